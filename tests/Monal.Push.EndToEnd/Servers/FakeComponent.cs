using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using Monal.Push.Demo.Chatting;
using Monal.Push.Demo.RunningPeers;

namespace Monal.Push.EndToEnd.Servers;

/// <summary>
/// A stand-in push component for proving the server harness: XEP-0114 connect and handshake, then it records every
/// incoming IQ and answers it with an empty <c>result</c> (what our component answers for an accepted push).
/// </summary>
public sealed class FakeComponent : IAsyncDisposable
{
    internal static readonly XNamespace Accept = "jabber:component:accept";
    internal static readonly XNamespace PubSub = "http://jabber.org/protocol/pubsub";

    private static readonly XNamespace Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";

    private readonly XmppConnection connection;
    private readonly Func<XElement, XElement?>? respond;
    private readonly List<XElement> iqs = [];
    private TaskCompletionSource arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? readLoop;

    private FakeComponent(XmppConnection connection, string domain, Func<XElement, XElement?>? respond)
    {
        this.connection = connection;
        this.respond = respond;
        Domain = domain;
    }

    public string Domain { get; }

    public TimeSpan Timeout => connection.Timeout;

    /// <summary>Every IQ received so far, as received.</summary>
    public IReadOnlyList<XElement> ReceivedIqs
    {
        get
        {
            lock (iqs)
            {
                return [.. iqs];
            }
        }
    }

    /// <summary>
    /// Connects as <see cref="IXmppServer.ComponentDomain"/>. <paramref name="respond"/> may return the reply to an
    /// incoming get/set IQ (see <see cref="ErrorReply"/>); when it is null or returns null the reply is an empty result.
    /// </summary>
    public static Task<FakeComponent> ConnectAsync(IXmppServer server, Func<XElement, XElement?>? respond = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(server);
        return ConnectAsync(server.Host, server.ComponentPort, server.ComponentDomain, server.ComponentSecret, respond, null, cancellationToken);
    }

    public static async Task<FakeComponent> ConnectAsync(string host, int port, string domain, string secret,
        Func<XElement, XElement?>? respond = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var connection = await XmppConnection.ConnectAsync(host, port, timeout ?? TinyXmppClient.DefaultTimeout, cancellationToken);
        var component = new FakeComponent(connection, domain, respond);
        try
        {
            await component.HandshakeAsync(secret, cancellationToken);
            return component;
        }
        catch
        {
            await component.DisposeAsync();
            throw;
        }
    }

    /// <summary>XEP-0114 §3: lowercase hex SHA-1 of the stream id followed by the secret.</summary>
    public static string HandshakeDigest(string streamId, string secret) =>
#pragma warning disable CA5350 // XEP-0114 §3 fixes SHA-1 for the handshake; it is the protocol, not our choice.
        Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(streamId + secret)));
#pragma warning restore CA5350

    /// <summary>An empty <c>result</c> to <paramref name="iq"/> (addresses swapped).</summary>
    public static XElement ResultReply(XElement iq)
    {
        ArgumentNullException.ThrowIfNull(iq);
        var reply = new XElement(Accept + "iq", new XAttribute("type", "result"), new XAttribute("id", iq.Attribute("id")?.Value ?? ""));
        if (iq.Attribute("from") is { } from)
        {
            reply.SetAttributeValue("to", from.Value);
        }

        if (iq.Attribute("to") is { } to)
        {
            reply.SetAttributeValue("from", to.Value);
        }

        return reply;
    }

    /// <summary>An RFC 6120 §8.3 error reply, e.g. ("cancel", "item-not-found") or ("wait", "internal-server-error").</summary>
    public static XElement ErrorReply(XElement iq, string type, string condition)
    {
        var reply = ResultReply(iq);
        reply.SetAttributeValue("type", "error");
        reply.Add(new XElement(Accept + "error", new XAttribute("type", type), new XElement(Stanzas + condition)));
        return reply;
    }

    /// <summary>Waits for the first pubsub publish IQ to <paramref name="node"/> (one received earlier counts).</summary>
    public Task<XElement> WaitForPublishAsync(string node, CancellationToken cancellationToken = default) =>
        WaitForIqAsync(iq => iq.Element(PubSub + "pubsub")?.Element(PubSub + "publish")?.Attribute("node")?.Value == node,
            $"a publish to node {node}", cancellationToken);

    /// <summary>Waits for the first IQ matching <paramref name="predicate"/> (one received earlier counts).</summary>
    public async Task<XElement> WaitForIqAsync(Func<XElement, bool> predicate, string description,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(Timeout);
        while (true)
        {
            Task signal;
            lock (iqs)
            {
                if (iqs.FirstOrDefault(predicate) is { } match)
                {
                    return match;
                }

                signal = arrived.Task;
            }

            try
            {
                await signal.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"The component received no {description} within {Timeout} ({ReceivedIqs.Count} other IQs).");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (readLoop is not null && !readLoop.IsCompleted)
        {
            try
            {
                await connection.SendAsync("</stream:stream>", CancellationToken.None);
                await readLoop.WaitAsync(TimeSpan.FromSeconds(2));
            }
            catch (Exception e) when (e is IOException or TimeoutException or ObjectDisposedException or OperationCanceledException)
            {
                // Closing politely is best effort; the socket is closed below either way.
            }
        }

        connection.Abort();
        await connection.DisposeAsync();
    }

    private async Task HandshakeAsync(string secret, CancellationToken cancellationToken)
    {
        await connection.SendAsync(
            $"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='{System.Security.SecurityElement.Escape(Domain)}'>",
            cancellationToken);
        var header = await connection.ReadStreamHeaderAsync(cancellationToken);
        var id = header.Attribute("id")?.Value ?? throw new XmppErrorException("The component stream header has no id", header);
        await connection.SendAsync(new XElement(Accept + "handshake", HandshakeDigest(id, secret)), cancellationToken);
        var answer = await connection.ReadElementAsync("the handshake answer", cancellationToken);
        if (answer.Name != Accept + "handshake")
        {
            throw new XmppErrorException("The server refused the component handshake", answer);
        }

        readLoop = Task.Run(ReadLoopAsync, CancellationToken.None);
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (await connection.Reader.ReadElementAsync() is { } element)
            {
                if (element.Name != Accept + "iq")
                {
                    continue;
                }

                lock (iqs)
                {
                    iqs.Add(element);
                    arrived.TrySetResult();
                    arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                var type = element.Attribute("type")?.Value;
                if (type is "set" or "get")
                {
                    await connection.SendAsync(respond?.Invoke(element) ?? ResultReply(element), CancellationToken.None);
                }
            }
        }
        catch (Exception e) when (e is IOException or System.Xml.XmlException or ObjectDisposedException or InvalidOperationException)
        {
            // The connection ended (server stopped or we disposed).
        }
    }
}
