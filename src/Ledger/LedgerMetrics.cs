using System.Diagnostics.Metrics;

namespace Monal.Push.Ledger;

/// <summary>The ledger's instruments (meter <c>Monal.Push.Ledger</c>); `/metrics` exports them. No personal data in tags.</summary>
public static class LedgerMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Monal.Push.Ledger";

    private static readonly Meter Meter = new(MeterName);

    internal static readonly Histogram<int> BatchSize = Meter.CreateHistogram<int>(
        "monal_ledger_group_commit_batch_size", "{appends}", "Appends that shared one transaction",
        advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] });

    // Seconds, in buckets from 0.1 ms to 2.5 s: where an append's time goes under load (issue 16).
    private static readonly double[] SecondsBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

    internal static readonly Histogram<double> AppendWait = Meter.CreateHistogram<double>(
        "monal_ledger_append_wait_seconds", "s", "From an append's arrival to the moment a group-commit writer takes it",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });

    internal static readonly Histogram<double> CommitDuration = Meter.CreateHistogram<double>(
        "monal_ledger_group_commit_seconds", "s", "One transaction of appends that committed (a connection, the statements, the commit), recorded before its callers resume",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });

    internal static readonly Counter<long> EventsAppended = Meter.CreateCounter<long>(
        "monal_ledger_events_appended_total", "{events}", "Events committed to the ledger");

    internal static readonly Counter<long> AppendFailures = Meter.CreateCounter<long>(
        "monal_ledger_append_failures_total", "{appends}", "Appends that failed, by SQLSTATE class");
}
