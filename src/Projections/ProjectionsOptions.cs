namespace Monal.Push.Projections;

/// <summary>Options of the read models (configuration section <c>Projections</c>).</summary>
public sealed class ProjectionsOptions
{
    /// <summary>Run the async projection daemon in this process (admin verbs turn it off).</summary>
    public bool RunDaemon { get; set; } = true;

    /// <summary>Events per page the daemon applies in one transaction.</summary>
    public int PageSize { get; set; } = 1000;

    /// <summary>
    /// Most positions the daemon settles and applies in one transaction for projections that replay inside the
    /// database (push_log, domain_usage).
    /// </summary>
    public int RangeSize { get; set; } = 10_000;

    /// <summary>
    /// Once a step found the daemon caught up (less than a full range or page), how long it lets new events gather
    /// before the next step: fewer, larger transactions for at most this much more lag.
    /// </summary>
    public TimeSpan GatherDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Events per page during a rebuild.</summary>
    public int RebuildPageSize { get; set; } = 20_000;

    /// <summary>Positions per transaction when a rebuild replays inside the database.</summary>
    public int RebuildRange { get; set; } = 250_000;

    /// <summary>How long the daemon waits for a notification before it polls anyway.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often a node that is not the daemon's leader tries to become it.</summary>
    public TimeSpan LeaderRetry { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest back-off after a failed page.</summary>
    public TimeSpan MaxErrorBackoff { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long DeviceDirectory may serve a cached active device without asking the database (an inactive one: 2 s at
    /// most). Changes are evicted by NOTIFY; the TTL only bounds what a lost notification could hide, and a stale
    /// "active" is harmless (the append refuses a push to an inactive device). 30 s (was 2 s) lets a device published
    /// to every few seconds skip the lookup: docs/benchmarks.md, "Issue 16".
    /// </summary>
    public TimeSpan DeviceCacheTtl { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most devices DeviceDirectory keeps in memory (about 0.4 KB each).</summary>
    public int DeviceCacheSize { get; set; } = 100_000;
}
