namespace Monal.Push.Demo.RunningPeers;

/// <summary>How <see cref="ProsodyServer"/> configures its private instance.</summary>
public sealed record ProsodyOptions
{
    public string Domain { get; init; } = "localhost";

    /// <summary>Defaults to "push." + <see cref="Domain"/>.</summary>
    public string? ComponentDomain { get; init; }

    /// <summary>Defaults to a random secret.</summary>
    public string? ComponentSecret { get; init; }

    /// <summary>mod_cloud_notify's <c>push_notification_with_body</c>: the real body goes into the summary.</summary>
    public bool PushWithBody { get; init; }

    /// <summary>mod_cloud_notify's <c>push_notification_with_sender</c>: the sender's JID goes into the summary.</summary>
    public bool PushWithSender { get; init; }

    /// <summary>mod_cloud_notify's <c>push_max_errors</c>; null keeps Prosody's default (16).</summary>
    public int? PushMaxErrors { get; init; }

    /// <summary>Accounts created before start (user → password).</summary>
    public IReadOnlyDictionary<string, string> Users { get; init; } = new Dictionary<string, string>();

    /// <summary>The prosody launcher; tests point it elsewhere to check the not-installed failure.</summary>
    public string Executable { get; init; } = "/usr/bin/prosody";

    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Where the instance's private folder is created; the temp folder when null.</summary>
    public string? ParentDirectory { get; init; }

    /// <summary>
    /// Starts Prosody in a session of its own (setsid), so a terminal's Ctrl-C reaches only the process that started
    /// it, which stops it after its component has left (`monal-push demo`).
    /// </summary>
    public bool OwnSession { get; init; }
}
