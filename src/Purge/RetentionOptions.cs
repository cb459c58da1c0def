namespace Monal.Push.Purge;

/// <summary>
/// Retention periods and job schedules (configuration section <c>Retention</c>; docs/operators.md). PushLog and
/// LogFiles may be shorter than the policy's 14 days, never longer (<see cref="RetentionOptionsValidator"/>).
/// </summary>
public sealed class RetentionOptions
{
    /// <summary>
    /// How long push events, push-log rows, the per-day domain counters and dead-token records are kept
    /// (<c>Retention:PushLog</c>, at most 14 days).
    /// </summary>
    public TimeSpan PushLog { get; set; } = TimeSpan.FromDays(14);

    /// <summary>How long server log files (ours and the embedded PostgreSQL's) are kept (<c>Retention:LogFiles</c>, at most 14 days).</summary>
    public TimeSpan LogFiles { get; set; } = TimeSpan.FromDays(14);

    /// <summary>How often the push-log purge and the log-file retention run.</summary>
    public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often devices with tokens Apple declared invalid are erased.</summary>
    public TimeSpan InvalidTokenInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Rows deleted per statement, so a purge never holds long locks beside ingestion.</summary>
    public int BatchSize { get; set; } = 5000;

    /// <summary>Run the Quartz scheduler in this process (off for admin verbs that only need the facades).</summary>
    public bool Scheduler { get; set; } = true;
}
