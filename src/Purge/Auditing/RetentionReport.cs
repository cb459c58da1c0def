namespace Monal.Push.Purge.Auditing;

/// <summary>
/// The answer of `monal-push audit retention`: what is held and how old it is against the policy, whether each
/// retention job ran on schedule over the last 30 days, and a scan for personal data that must never be stored.
/// <see cref="Compliant"/> is false exactly when <see cref="Violations"/> is not empty (exit code non-zero).
/// </summary>
public sealed record RetentionReport(
    DateTimeOffset GeneratedAt,
    bool Compliant,
    IReadOnlyList<InventoryItem> Inventory,
    IReadOnlyList<JobSchedule> Jobs,
    ScanSummary Scan,
    IReadOnlyList<AuditViolation> Violations);

/// <summary>
/// One category of data: how much is held, the oldest item and its age, the policy limit (none for data kept while
/// in use) and the grace of one job interval (a job that runs every hour lets an item outlive its limit by up to
/// an hour).
/// </summary>
public sealed record InventoryItem(
    string Category,
    string Description,
    long Count,
    DateTimeOffset? Oldest,
    TimeSpan? OldestAge,
    TimeSpan? Limit,
    TimeSpan? Grace,
    bool Compliant);

/// <summary>Whether a retention job ran on schedule: successful runs in the window, and the longest gap between them.</summary>
public sealed record JobSchedule(
    string Job,
    TimeSpan Interval,
    int Runs,
    int FailedRuns,
    DateTimeOffset? LastRun,
    TimeSpan LongestGap,
    bool OnSchedule);

/// <summary>What the personal-data scan read.</summary>
public sealed record ScanSummary(long DatabaseRowsScanned, int LogFilesScanned, long LogLinesScanned);

/// <summary>
/// A breach of the policy: the category (a table, "log files", a job), the rule broken, where (a table and key, or
/// a file and line) and a detail that never quotes the personal data itself.
/// </summary>
public sealed record AuditViolation(string Category, string Rule, string Location, string Detail);

/// <summary>The formats `audit retention --format` offers.</summary>
public enum ReportFormat
{
    /// <summary>Plain text.</summary>
    Text,

    /// <summary>JSON.</summary>
    Json,

    /// <summary>A self-contained HTML page for a non-engineer.</summary>
    Html,
}
