using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using System.Xml.Linq;
using Monal.Push.Demo.RunningPeers;

namespace Monal.Push.Demo.Chatting;

/// <summary>
/// A minimal c2s client for the tests and the demo (RFC 6120 without TLS): stream, SASL PLAIN, resource binding, session if
/// offered, XEP-0357 enable/disable, messages and presence. Every wait is bounded by <see cref="Timeout"/>.
/// </summary>
public sealed class TinyXmppClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    internal static readonly XNamespace Client = "jabber:client";
    internal static readonly XNamespace Push = "urn:xmpp:push:0";
    internal static readonly XNamespace Data = "jabber:x:data";
    private static readonly XNamespace Sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
    private static readonly XNamespace Bind = "urn:ietf:params:xml:ns:xmpp-bind";
    private static readonly XNamespace Session = "urn:ietf:params:xml:ns:xmpp-session";
    private static readonly XNamespace Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
    private static readonly XNamespace Ping = "urn:xmpp:ping";

    private readonly XmppConnection connection;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<XElement>> pending = new();
    private readonly Channel<XElement> inbox = Channel.CreateUnbounded<XElement>();
    private readonly TaskCompletionSource closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? readLoop;
    private int nextId;

    private TinyXmppClient(XmppConnection connection, string domain)
    {
        this.connection = connection;
        Domain = domain;
    }

    public string Domain { get; }

    /// <summary>The full JID the server bound (user@domain/resource).</summary>
    public string Jid { get; private set; } = "";

    public string BareJid => Jid.Split('/')[0];

    public TimeSpan Timeout => connection.Timeout;

    public static Task<TinyXmppClient> ConnectAsync(IXmppServer server, string user, string password,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(server);
        return ConnectAsync(server.Host, server.ClientPort, server.Domain, user, password, "tiny", null, cancellationToken);
    }

    /// <summary>Connects, authenticates with SASL PLAIN, binds <paramref name="resource"/> and starts reading.</summary>
    public static async Task<TinyXmppClient> ConnectAsync(string host, int port, string domain, string user, string password,
        string resource = "tiny", TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var connection = await XmppConnection.ConnectAsync(host, port, timeout ?? DefaultTimeout, cancellationToken);
        var client = new TinyXmppClient(connection, domain);
        try
        {
            await client.NegotiateAsync(user, password, resource, cancellationToken);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// XEP-0357 §5: enables push to <paramref name="componentJid"/> with <paramref name="node"/>; the publish options
    /// (if any) go into a <c>pubsub#publish-options</c> form. Returns when the server answered <c>result</c>.
    /// </summary>
    /// <exception cref="XmppErrorException">The server answered with an error.</exception>
    public async Task EnablePushAsync(string componentJid, string node, IReadOnlyDictionary<string, string>? publishOptions = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(componentJid);
        ArgumentNullException.ThrowIfNull(node);
        var enable = new XElement(Push + "enable", new XAttribute("jid", componentJid), new XAttribute("node", node));
        if (publishOptions is not null)
        {
            var form = new XElement(Data + "x", new XAttribute("type", "submit"),
                new XElement(Data + "field", new XAttribute("var", "FORM_TYPE"),
                    new XElement(Data + "value", "http://jabber.org/protocol/pubsub#publish-options")));
            foreach (var (name, value) in publishOptions)
            {
                form.Add(new XElement(Data + "field", new XAttribute("var", name), new XElement(Data + "value", value)));
            }

            enable.Add(form);
        }

        await SendIqAsync("set", enable, null, cancellationToken);
    }

    /// <summary>XEP-0357 §6: disables push to <paramref name="componentJid"/> (one node, or all when null).</summary>
    public async Task DisablePushAsync(string componentJid, string? node = null, CancellationToken cancellationToken = default)
    {
        var disable = new XElement(Push + "disable", new XAttribute("jid", componentJid));
        if (node is not null)
        {
            disable.SetAttributeValue("node", node);
        }

        await SendIqAsync("set", disable, null, cancellationToken);
    }

    /// <summary>Sends an IQ with <paramref name="payload"/> and returns the result stanza.</summary>
    /// <exception cref="XmppErrorException">The server answered with an error.</exception>
    public async Task<XElement> SendIqAsync(string type, XElement payload, string? to = null,
        CancellationToken cancellationToken = default)
    {
        var id = NextId();
        var iq = new XElement(Client + "iq", new XAttribute("type", type), new XAttribute("id", id), payload);
        if (to is not null)
        {
            iq.SetAttributeValue("to", to);
        }

        var answer = new TaskCompletionSource<XElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        pending[id] = answer;
        try
        {
            await connection.SendAsync(iq, cancellationToken);
            var reply = await answer.Task.WaitAsync(Timeout, cancellationToken);
            if (reply.Attribute("type")?.Value == "error")
            {
                throw new XmppErrorException($"The server refused <{payload.Name.LocalName} xmlns='{payload.Name.NamespaceName}'>", reply);
            }

            return reply;
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"No answer to <{payload.Name.LocalName} xmlns='{payload.Name.NamespaceName}'> within {Timeout}.");
        }
        finally
        {
            pending.TryRemove(id, out _);
        }
    }

    /// <summary>Sends initial (available) presence.</summary>
    public Task SendPresenceAsync(CancellationToken cancellationToken = default) =>
        connection.SendAsync(new XElement(Client + "presence"), cancellationToken);

    /// <summary>Sends a chat message (no body element when <paramref name="body"/> is null).</summary>
    public Task SendMessageAsync(string to, string? body, CancellationToken cancellationToken = default)
    {
        var message = new XElement(Client + "message", new XAttribute("to", to), new XAttribute("type", "chat"),
            new XAttribute("id", NextId()));
        if (body is not null)
        {
            message.Add(new XElement(Client + "body", body));
        }

        return connection.SendAsync(message, cancellationToken);
    }

    /// <summary>The next message or presence the server delivered to us.</summary>
    public async Task<XElement> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await inbox.Reader.ReadAsync(cancellationToken).AsTask().WaitAsync(Timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"No message or presence within {Timeout}.");
        }
    }

    /// <summary>
    /// Closes the stream (RFC 6120 §4.4) and waits for the server's closing tag, so the session is gone (the user is
    /// offline) when this returns. Push stays enabled: both servers keep XEP-0357 registrations for offline users.
    /// </summary>
    public async Task DisconnectAsync(CancellationToken cancellationToken = default)
    {
        if (closed.Task.IsCompleted)
        {
            return;
        }

        try
        {
            await connection.SendAsync("</stream:stream>", cancellationToken);
            await closed.Task.WaitAsync(Timeout, cancellationToken);
        }
        finally
        {
            connection.Abort();
        }
    }

    public async ValueTask DisposeAsync()
    {
        connection.Abort();
        if (readLoop is not null)
        {
            try
            {
                await readLoop.WaitAsync(Timeout);
            }
            catch (TimeoutException)
            {
                // The socket is closed; a read that still hangs is abandoned.
            }
        }

        await connection.DisposeAsync();
    }

    private async Task NegotiateAsync(string user, string password, string resource, CancellationToken cancellationToken)
    {
        var features = await OpenStreamAsync(cancellationToken);
        var mechanisms = features.Element(Sasl + "mechanisms")?.Elements(Sasl + "mechanism").Select(m => m.Value).ToList() ?? [];
        if (!mechanisms.Contains("PLAIN"))
        {
            throw new XmppErrorException($"The server offers no SASL PLAIN on a plain connection (offers: {string.Join(", ", mechanisms)})", features);
        }

        // RFC 4616: authzid (empty) NUL authcid NUL passwd.
        var credentials = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{password}"));
        await connection.SendAsync(new XElement(Sasl + "auth", new XAttribute("mechanism", "PLAIN"), credentials), cancellationToken);
        var outcome = await connection.ReadElementAsync("the SASL outcome", cancellationToken);
        if (outcome.Name != Sasl + "success")
        {
            throw new XmppErrorException($"SASL PLAIN failed for {user}", outcome);
        }

        connection.Reader.Restart();
        features = await OpenStreamAsync(cancellationToken);
        if (features.Element(Bind + "bind") is null)
        {
            throw new XmppErrorException("The server offers no resource binding", features);
        }

        var bind = await NegotiationIqAsync(new XElement(Bind + "bind", new XElement(Bind + "resource", resource)), cancellationToken);
        Jid = bind.Element(Bind + "bind")?.Element(Bind + "jid")?.Value
            ?? throw new XmppErrorException("The bind result carries no JID", bind);

        // RFC 3921 sessions: obsolete, but harmless to establish when a server still offers them.
        if (features.Element(Session + "session") is not null)
        {
            await NegotiationIqAsync(new XElement(Session + "session"), cancellationToken);
        }

        readLoop = Task.Run(ReadLoopAsync, CancellationToken.None);
    }

    private async Task<XElement> OpenStreamAsync(CancellationToken cancellationToken)
    {
        await connection.SendAsync(
            $"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{SecurityElement(Domain)}' version='1.0' xml:lang='en'>",
            cancellationToken);
        await connection.ReadStreamHeaderAsync(cancellationToken);
        var features = await connection.ReadElementAsync("stream features", cancellationToken);
        if (features.Name != XmppStreamReader.Streams + "features")
        {
            throw new XmppErrorException("Expected stream features", features);
        }

        return features;
    }

    /// <summary>An IQ during negotiation, before the read loop runs: reads until its answer arrives.</summary>
    private async Task<XElement> NegotiationIqAsync(XElement payload, CancellationToken cancellationToken)
    {
        var id = NextId();
        await connection.SendAsync(new XElement(Client + "iq", new XAttribute("type", "set"), new XAttribute("id", id), payload), cancellationToken);
        while (true)
        {
            var element = await connection.ReadElementAsync($"the answer to <{payload.Name.LocalName}>", cancellationToken);
            if (element.Name == Client + "iq" && element.Attribute("id")?.Value == id)
            {
                return element.Attribute("type")?.Value == "result"
                    ? element
                    : throw new XmppErrorException($"The server refused <{payload.Name.LocalName}>", element);
            }
        }
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (await connection.Reader.ReadElementAsync() is { } element)
            {
                await DispatchAsync(element);
            }
        }
        catch (Exception e) when (e is IOException or System.Xml.XmlException or ObjectDisposedException or InvalidOperationException)
        {
            // The connection ended; whoever waits learns it below.
        }
        finally
        {
            closed.TrySetResult();
            foreach (var waiter in pending.Values)
            {
                waiter.TrySetException(new XmppErrorException("The connection closed before the server answered."));
            }

            inbox.Writer.TryComplete();
        }
    }

    private async Task DispatchAsync(XElement element)
    {
        if (element.Name == Client + "iq")
        {
            var type = element.Attribute("type")?.Value;
            var id = element.Attribute("id")?.Value ?? "";
            if (type is "result" or "error")
            {
                if (pending.TryGetValue(id, out var waiter))
                {
                    waiter.TrySetResult(element);
                }

                return;
            }

            // RFC 6120 §8.2.3: answer every get/set; pings (XEP-0199) with result, anything else with an error.
            var reply = new XElement(Client + "iq", new XAttribute("id", id));
            if (element.Attribute("from") is { } from)
            {
                reply.SetAttributeValue("to", from.Value);
            }

            if (element.Element(Ping + "ping") is not null)
            {
                reply.SetAttributeValue("type", "result");
            }
            else
            {
                reply.SetAttributeValue("type", "error");
                reply.Add(new XElement(Client + "error", new XAttribute("type", "cancel"),
                    new XElement(Stanzas + "service-unavailable")));
            }

            await connection.SendAsync(reply, CancellationToken.None);
            return;
        }

        if (element.Name == XmppStreamReader.Streams + "error")
        {
            return;
        }

        await inbox.Writer.WriteAsync(element);
    }

    private string NextId() =>
        string.Create(CultureInfo.InvariantCulture, $"tiny{Interlocked.Increment(ref nextId)}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");

    private static string SecurityElement(string value) => System.Security.SecurityElement.Escape(value) ?? "";
}
