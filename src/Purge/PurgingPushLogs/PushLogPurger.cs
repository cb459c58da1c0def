using Microsoft.Extensions.Options;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Purge.Scheduling;
using Npgsql;

namespace Monal.Push.Purge.PurgingPushLogs;

/// <summary>
/// Deletes pushes and their outcomes older than Retention:PushLog: the push events (whole day partitions dropped,
/// the boundary day deleted in batches, by the ledger) and the push_log read-model rows, in bounded batches so that
/// ingestion, which appends to today's partition, is never blocked for long. Registration data stays.
/// </summary>
internal sealed class PushLogPurger(EventStore store, NpgsqlDataSource dataSource, IOptions<RetentionOptions> options) : IRetentionTask
{
    public string Job => RetentionJobNames.PushLogs;

    public DateTimeOffset CutoffFor(DateTimeOffset now) => now - options.Value.PushLog;

    public async Task RunAsync(DateTimeOffset cutoff, bool dryRun, IDictionary<string, long> deleted, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(deleted);
        var batch = Math.Max(1, options.Value.BatchSize);
        var events = await store.PurgePushEventsAsync(cutoff, batch, dryRun, ct);
        deleted["push_events"] = events.EventsDeleted;
        deleted["push_event_partitions"] = events.PartitionsDropped;

        if (!await ReadModelTables.ExistsAsync(dataSource, ReadModelTables.PushLog, ct))
        {
            return;
        }

        deleted["push_log"] = 0;
        if (dryRun)
        {
            await using var count = dataSource.CreateCommand("select count(*) from push_log where requested_at < $1");
            count.Parameters.Add(new() { Value = cutoff });
            deleted["push_log"] = (long)(await count.ExecuteScalarAsync(ct))!;
            return;
        }

        while (true)
        {
            // By ctid, so the purge does not depend on the read model's key; each batch is its own short transaction.
            await using var delete = dataSource.CreateCommand("""
                delete from push_log where ctid = any(array(
                    select ctid from push_log where requested_at < $1 limit $2))
                """);
            delete.Parameters.Add(new() { Value = cutoff });
            delete.Parameters.Add(new() { Value = batch });
            var n = await delete.ExecuteNonQueryAsync(ct);
            deleted["push_log"] += n;
            if (n < batch)
            {
                break;
            }
        }
    }
}
