namespace Monal.Push.Purge;

/// <summary>Retention periods and job schedules (configuration section <c>Retention</c>; PRODUCT.md's table).</summary>
public sealed class RetentionOptions
{
    /// <summary>How long push events and push-log rows are kept (<c>Retention:PushLog</c>).</summary>
    public TimeSpan PushLog { get; set; } = TimeSpan.FromDays(14);

    /// <summary>How long server log files are kept (<c>Retention:LogFiles</c>).</summary>
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
