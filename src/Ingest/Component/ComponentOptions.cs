namespace Monal.Push.Ingest.Component;

/// <summary>The XEP-0114 link to the XMPP server, bound from <c>Xmpp:Component</c> (configuration keys: docs/operators.md).</summary>
internal sealed class ComponentOptions
{
    public const string Section = "Xmpp:Component";

    /// <summary>Where the XMPP server listens for components.</summary>
    public string Host { get; set; } = "127.0.0.1";

    public int Port { get; set; } = 5347;

    /// <summary>Our component's domain, e.g. <c>push.example.org</c> (required).</summary>
    public string Domain { get; set; } = string.Empty;

    /// <summary>The shared secret configured for the component on the XMPP server (required).</summary>
    public string Secret { get; set; } = string.Empty;

    /// <summary>A whitespace keepalive is sent when nothing else was written for about this long.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>A larger stanza ends the stream with policy-violation (counted in bytes, a few KB of slack).</summary>
    public int MaxStanzaBytes { get; set; } = 65536;

    public TimeSpan ReconnectMinDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between attempts after the server refused our handshake (a configuration problem).</summary>
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The longest wait between attempts while the server cannot be reached or drops the link (a restart): the link
    /// comes back within this long of the server listening again (issue 15, point 5).
    /// </summary>
    public TimeSpan ReconnectUnreachableMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Stanzas being handled at once; when full, the link stops reading (TCP back-pressure on the server).</summary>
    public int MaxInFlight { get; set; } = 2048;

    /// <summary>How long the server may take to answer our stream header and handshake.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>On shutdown or link loss, how long in-flight stanzas may take to finish before their replies are dropped.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
