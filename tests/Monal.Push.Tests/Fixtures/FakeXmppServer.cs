using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using Monal.Push.Ingest.Xml;

namespace Monal.Push.Tests.Fixtures;

/// <summary>
/// A scripted XMPP server on loopback that accepts one XEP-0114 component at a time (after npgsql's PgServerMock):
/// tests <c>Write…</c> raw protocol, <c>FlushAsync</c>, and <c>Expect…</c> what the component sends. Every expectation
/// gives up after <see cref="Timeout"/> so a broken component fails the test instead of hanging it.
/// </summary>
public sealed class FakeXmppServer : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private readonly TcpListener _listener;

    private FakeXmppServer(TcpListener listener)
    {
        _listener = listener;
        Port = ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public int Port { get; }

    /// <summary>Starts listening; pass a port to "restart" a server where the last one listened.</summary>
    public static FakeXmppServer Start(int port = 0)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start();
        return new FakeXmppServer(listener);
    }

    public async Task<FakeComponentSession> AcceptAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        var client = await _listener.AcceptTcpClientAsync(cts.Token);
        return new FakeComponentSession(client);
    }

    /// <summary>Accepts the component and completes the handshake, checking the SHA-1 digest against <paramref name="secret"/>.</summary>
    public async Task<FakeComponentSession> AcceptComponentAsync(string secret)
    {
        var session = await AcceptAsync();
        await session.ExpectStreamHeaderAsync();
        await session.WriteStreamHeader().FlushAsync();
        var digest = await session.ExpectHandshakeAsync();
        Assert.Equal(session.ExpectedDigest(secret), digest);
        await session.WriteHandshakeSuccess().FlushAsync();
        return session;
    }

    public ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Dispose();
        return ValueTask.CompletedTask;
    }
}

public sealed class FakeComponentSession : IAsyncDisposable
{
    private readonly TcpClient _client;
    private readonly NetworkStream _stream;
    private readonly StanzaReader _reader;
    private readonly StringBuilder _pending = new();

    internal FakeComponentSession(TcpClient client)
    {
        _client = client;
        _client.NoDelay = true;
        _stream = client.GetStream();
        _reader = new StanzaReader(_stream, 1024 * 1024);
    }

    public string StreamId { get; } = Guid.NewGuid().ToString();

    /// <summary>The <c>to</c> of the component's stream header: the domain it claims.</summary>
    public string? ComponentDomain { get; private set; }

#pragma warning disable CA5350 // XEP-0114 mandates SHA-1; the fake server checks the digest the way real servers do.
    public string ExpectedDigest(string secret) =>
        Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(StreamId + secret)));
#pragma warning restore CA5350

    public FakeComponentSession Write(string xml)
    {
        _pending.Append(xml);
        return this;
    }

    public FakeComponentSession WriteStreamHeader() => Write(
        "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' " +
        $"id='{StreamId}' from='{ComponentDomain}'>");

    public FakeComponentSession WriteHandshakeSuccess() => Write("<handshake/>");

    public FakeComponentSession WriteStreamError(string condition) =>
        Write($"<stream:error><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");

    public FakeComponentSession WriteStreamClose() => Write("</stream:stream>");

    public async Task<FakeComponentSession> FlushAsync()
    {
        var bytes = Encoding.UTF8.GetBytes(_pending.ToString());
        _pending.Clear();
        using var cts = new CancellationTokenSource(FakeXmppServer.Timeout);
        await _stream.WriteAsync(bytes, cts.Token);
        await _stream.FlushAsync(cts.Token);
        return this;
    }

    public async Task ExpectStreamHeaderAsync()
    {
        using var cts = new CancellationTokenSource(FakeXmppServer.Timeout);
        var header = await _reader.ReadHeaderAsync(cts.Token);
        Assert.Equal("jabber:component:accept", header.DefaultNamespace);
        Assert.False(string.IsNullOrEmpty(header.To));
        ComponentDomain = header.To;
    }

    public async Task<string> ExpectHandshakeAsync()
    {
        var handshake = await ExpectStanzaAsync();
        Assert.Equal(XName.Get("handshake", "jabber:component:accept"), handshake.Name);
        return handshake.Value;
    }

    public async Task<XElement> ExpectStanzaAsync()
    {
        using var cts = new CancellationTokenSource(FakeXmppServer.Timeout);
        var stanza = await _reader.ReadStanzaAsync(cts.Token);
        Assert.NotNull(stanza);
        return stanza;
    }

    public async Task<XElement> ExpectIqResultAsync(string id)
    {
        var iq = await ExpectStanzaAsync();
        AssertIq(iq, id, "result");
        return iq;
    }

    public async Task<XElement> ExpectIqErrorAsync(string id, string type, string condition)
    {
        var iq = await ExpectStanzaAsync();
        AssertIqError(iq, id, type, condition);
        return iq;
    }

    public static void AssertIq(XElement iq, string id, string type)
    {
        Assert.Equal(XName.Get("iq", "jabber:component:accept"), iq.Name);
        Assert.Equal(type, (string?)iq.Attribute("type"));
        Assert.Equal(id, (string?)iq.Attribute("id"));
    }

    public static void AssertIqError(XElement iq, string id, string type, string condition)
    {
        AssertIq(iq, id, "error");
        var error = iq.Element(XName.Get("error", "jabber:component:accept"));
        Assert.NotNull(error);
        Assert.Equal(type, (string?)error.Attribute("type"));
        Assert.NotNull(error.Element(XName.Get(condition, "urn:ietf:params:xml:ns:xmpp-stanzas")));
    }

    /// <summary>The component sent <c>&lt;/stream:stream&gt;</c>, optionally preceded by a stream error with <paramref name="errorCondition"/>.</summary>
    public async Task ExpectStreamCloseAsync(string? errorCondition = null)
    {
        using var cts = new CancellationTokenSource(FakeXmppServer.Timeout);
        if (errorCondition is not null)
        {
            var error = await _reader.ReadStanzaAsync(cts.Token);
            Assert.NotNull(error);
            Assert.Equal(XName.Get("error", "http://etherx.jabber.org/streams"), error.Name);
            Assert.NotNull(error.Element(XName.Get(errorCondition, "urn:ietf:params:xml:ns:xmpp-streams")));
        }

        Assert.Null(await _reader.ReadStanzaAsync(cts.Token));
    }

    /// <summary>Drops the TCP connection without closing the stream, as a crashing server would.</summary>
    public void Abort()
    {
        _client.Client.LingerState = new LingerOption(true, 0);
        _client.Close();
    }

    public ValueTask DisposeAsync()
    {
        _reader.Dispose();
        _client.Dispose();
        return ValueTask.CompletedTask;
    }
}
