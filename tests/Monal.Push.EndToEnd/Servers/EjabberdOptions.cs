namespace Monal.Push.EndToEnd.Servers;

/// <summary>How <see cref="EjabberdServer"/> configures its private instance.</summary>
public sealed record EjabberdOptions
{
    public string Domain { get; init; } = "localhost";

    /// <summary>Defaults to "push." + <see cref="Domain"/>.</summary>
    public string? ComponentDomain { get; init; }

    /// <summary>Defaults to a random secret.</summary>
    public string? ComponentSecret { get; init; }

    /// <summary>mod_push's <c>include_body</c>: false sends no body field; true the real body; null ejabberd's default text.</summary>
    public bool? IncludeBody { get; init; }

    /// <summary>mod_push's <c>include_sender</c>.</summary>
    public bool IncludeSender { get; init; }

    /// <summary>The Erlang launcher; tests point it elsewhere to check the not-installed failure.</summary>
    public string ErlExecutable { get; init; } = "/usr/bin/erl";

    /// <summary>How long a start may take before it counts as failed (a signal ends the wait sooner: 4-6 s on a quiet machine).</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(90);
}
