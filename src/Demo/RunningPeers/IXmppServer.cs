namespace Monal.Push.Demo.RunningPeers;

/// <summary>A private XMPP server instance on loopback that a test started and will stop.</summary>
public interface IXmppServer : IAsyncDisposable
{
    /// <summary>Product name for messages: "Prosody" or "ejabberd".</summary>
    string Name { get; }

    /// <summary>Always 127.0.0.1.</summary>
    string Host { get; }

    /// <summary>Plain-text c2s port (no TLS offered or required).</summary>
    int ClientPort { get; }

    /// <summary>XEP-0114 (jabber:component:accept) port.</summary>
    int ComponentPort { get; }

    /// <summary>The virtual host users live on, e.g. "localhost"; also the <c>from</c> of publish IQs.</summary>
    string Domain { get; }

    /// <summary>The component's domain, e.g. "push.localhost".</summary>
    string ComponentDomain { get; }

    /// <summary>The XEP-0114 shared secret.</summary>
    string ComponentSecret { get; }

    /// <summary>The server's own log file inside its private folder.</summary>
    string LogFile { get; }

    /// <summary>From process start until the server accepted connections on its ports.</summary>
    TimeSpan StartupTime { get; }

    /// <summary>The log so far plus what the process wrote to stdout/stderr (for assertion messages).</summary>
    string ReadLog();

    /// <summary>Creates (or overwrites) an account on <see cref="Domain"/>.</summary>
    Task CreateUserAsync(string user, string password, CancellationToken cancellationToken = default);
}
