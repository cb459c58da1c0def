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

    internal static readonly Counter<long> EventsAppended = Meter.CreateCounter<long>(
        "monal_ledger_events_appended_total", "{events}", "Events committed to the ledger");

    internal static readonly Counter<long> AppendFailures = Meter.CreateCounter<long>(
        "monal_ledger_append_failures_total", "{appends}", "Appends that failed, by SQLSTATE class");
}
