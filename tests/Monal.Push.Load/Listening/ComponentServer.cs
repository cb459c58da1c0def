using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Xml;

namespace Monal.Push.Load.Listening;

/// <summary>
/// The XMPP server's side of XEP-0114, on loopback only: accepts the component's stream
/// (<c>jabber:component:accept</c>), sends a stream header with a fresh id, checks the handshake
/// (hex SHA-1 of id + secret, XEP-0114 section 3) and answers <c>&lt;handshake/&gt;</c>. A wrong handshake gets
/// <c>not-authorized</c> and the connection is closed; the component may try again.
/// </summary>
internal sealed class ComponentServer(string domain, string secret) : IDisposable
{
    private const string StreamsNs = "http://etherx.jabber.org/streams";
    private const string ComponentNs = "jabber:component:accept";
    private TcpListener? _listener;

    public int Port { get; private set; }

    /// <summary>Handshakes that failed (wrong secret or domain, bad stream).</summary>
    public int RejectedHandshakes { get; private set; }

    public void Start(int port = 0)
    {
        _listener = new TcpListener(IPAddress.Loopback, port);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start(8);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
    }

    /// <summary>Waits for a component to connect and authenticate; returns the established link.</summary>
    public async Task<ComponentLink> AcceptAsync(CancellationToken ct)
    {
        while (true)
        {
            var listener = _listener ?? throw new InvalidOperationException("Start the server first.");
            var client = await listener.AcceptTcpClientAsync(ct);
            client.NoDelay = true;
            client.SendBufferSize = 1 << 20;
            client.ReceiveBufferSize = 1 << 20;
            var stream = client.GetStream();
            var reader = XmlReader.Create(stream, new XmlReaderSettings
            {
                Async = true,
                DtdProcessing = DtdProcessing.Prohibit,
                IgnoreWhitespace = true,
                IgnoreComments = true,
                CloseInput = false,
            });
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(30));
                if (await HandshakeAsync(stream, reader, timeout.Token))
                {
                    return new ComponentLink(client, stream, reader);
                }
            }
            catch (Exception e) when (e is XmlException or IOException or SocketException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                // A component that closed or stalled during the handshake: wait for the next attempt.
            }

            RejectedHandshakes++;
            reader.Dispose();
            client.Dispose();
        }
    }

    private async Task<bool> HandshakeAsync(NetworkStream stream, XmlReader reader, CancellationToken ct)
    {
        // The component's <stream:stream xmlns='jabber:component:accept' to='domain'>.
        while (await reader.ReadAsync().WaitAsync(ct))
        {
            if (reader.NodeType == XmlNodeType.Element)
            {
                break;
            }
        }

        if (reader.NodeType != XmlNodeType.Element || reader.LocalName != "stream" || reader.NamespaceURI != StreamsNs
            || reader.LookupNamespace(string.Empty) != ComponentNs)
        {
            await CloseAsync(stream, "invalid-namespace", ct);
            return false;
        }

        var to = reader.GetAttribute("to");
        var id = Guid.NewGuid().ToString("D");
        await WriteAsync(stream,
            $"<?xml version='1.0'?><stream:stream xml:lang='en' id='{id}' xmlns='{ComponentNs}' xmlns:stream='{StreamsNs}' from='{Escape(to ?? domain)}'>",
            ct);
        if (!string.Equals(to, domain, StringComparison.Ordinal))
        {
            await CloseAsync(stream, "host-unknown", ct);
            return false;
        }

        while (await reader.ReadAsync().WaitAsync(ct))
        {
            if (reader.NodeType == XmlNodeType.Element)
            {
                break;
            }
        }

        if (reader.NodeType != XmlNodeType.Element || reader.LocalName != "handshake" || reader.NamespaceURI != ComponentNs)
        {
            await CloseAsync(stream, "not-authorized", ct);
            return false;
        }

        // Not ReadElementContentAsString: it reads past the end tag, and nothing follows until we answer.
        var digest = string.Empty;
        while (!reader.IsEmptyElement && await reader.ReadAsync().WaitAsync(ct) && reader.NodeType != XmlNodeType.EndElement)
        {
            if (reader.NodeType is XmlNodeType.Text or XmlNodeType.Whitespace or XmlNodeType.SignificantWhitespace)
            {
                digest += reader.Value;
            }
        }

        digest = digest.Trim();
        if (!string.Equals(digest, Expected(id, secret), StringComparison.OrdinalIgnoreCase))
        {
            await CloseAsync(stream, "not-authorized", ct);
            return false;
        }

        await WriteAsync(stream, "<handshake/>", ct);
        return true;
    }

#pragma warning disable CA5350 // XEP-0114 mandates SHA-1 for the handshake.
    internal static string Expected(string streamId, string secret) =>
        Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(streamId + secret)));
#pragma warning restore CA5350

    private static async Task CloseAsync(NetworkStream stream, string condition, CancellationToken ct) =>
        await WriteAsync(stream, $"<stream:error><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>", ct);

    private static async Task WriteAsync(NetworkStream stream, string text, CancellationToken ct) =>
        await stream.WriteAsync(Encoding.UTF8.GetBytes(text), ct);

    private static string Escape(string value) => System.Security.SecurityElement.Escape(value);

    public void Dispose() => _listener?.Dispose();
}
