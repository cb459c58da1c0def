namespace Monal.Push.Purge.Scheduling;

/// <summary>The names of the retention jobs, as `purge run --job NAME` and the RetentionRun events spell them.</summary>
public static class RetentionJobNames
{
    /// <summary>Erases devices whose token Apple declared invalid.</summary>
    public const string InvalidTokens = "invalid-tokens";

    /// <summary>Deletes push events and push-log rows older than Retention:PushLog.</summary>
    public const string PushLogs = "push-logs";

    /// <summary>Deletes log files older than Retention:LogFiles.</summary>
    public const string LogFiles = "log-files";

    /// <summary>Every job, in the order `purge run` without --job runs them.</summary>
    public static IReadOnlyList<string> All { get; } = [InvalidTokens, PushLogs, LogFiles];
}
