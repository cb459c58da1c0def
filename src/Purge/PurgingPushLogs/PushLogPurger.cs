using Microsoft.Extensions.Options;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Projections.PushLog;
using Monal.Push.Purge.Scheduling;

namespace Monal.Push.Purge.PurgingPushLogs;

/// <summary>
/// Deletes pushes and their outcomes older than Retention:PushLog: the push events (whole day partitions detached
/// and dropped without being read, counted exactly from push_event_days, the boundary day deleted in batches, by
/// the ledger), then the read model's push log, push_log, and the per-day
/// domain_usage counters (on a one-user domain a day's count describes that
/// person), through their owner (<see cref="PushLogRetention"/>), also in bounded batches so that ingestion, which
/// appends to today's partition, is never blocked for long. Registration data stays.
/// </summary>
internal sealed class PushLogPurger(EventStore store, PushLogRetention pushLogs, IOptions<RetentionOptions> options) : IRetentionTask
{
    public string Job => RetentionJobNames.PushLogs;

    public DateTimeOffset CutoffFor(DateTimeOffset now) => now - options.Value.PushLog;

    public async Task RunAsync(DateTimeOffset cutoff, bool dryRun, IDictionary<string, long> deleted, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(deleted);
        var batch = Math.Max(1, options.Value.BatchSize);
        if (!dryRun)
        {
            // Creating a partition locks push_events ACCESS EXCLUSIVE; done here, hours ahead, it never happens in the
            // append path at midnight, where it would also wait behind a detach still running.
            var today = DateOnly.FromDateTime((cutoff + options.Value.PushLog).UtcDateTime);
            await store.EnsurePushPartitionsAsync(today, today.AddDays(2), ct);
        }

        var events = await store.PurgePushEventsAsync(cutoff, batch, dryRun, ct);
        deleted["push_events"] = events.EventsDeleted;
        deleted["push_event_partitions"] = events.PartitionsDropped;

        var rows = await pushLogs.PurgeAsync(cutoff, batch, dryRun, ct);
        deleted[ReadModelTables.PushLog] = rows.PushLog;
        deleted[ReadModelTables.DomainUsage] = rows.DomainUsage;
    }
}
