using System.Collections.Concurrent;
using System.Globalization;
using Npgsql;

namespace Monal.Push.Ledger.EventStore;

/// <summary>
/// What a push-event purge removed (or would remove, in a dry run): whole days dropped (no table scan), and the
/// events removed from dropped partitions and from batches in the boundary day.
/// </summary>
public readonly record struct PurgeResult(int PartitionsDropped, long EventsDeleted);

public sealed partial class EventStore
{
    private readonly ConcurrentDictionary<DateOnly, bool> _partitions = new();

    /// <summary>
    /// Hard-deletes a stream: its data key first (crypto-shredding), then every event of it in both tables, its
    /// streams row, and the rows of every registered deletion hook, in one transaction. Returns the number of
    /// events deleted (0 when the stream did not exist).
    /// </summary>
    public async Task<long> DeleteStreamAsync(Guid streamId, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using var batch = new NpgsqlBatch(connection, tx);
        // Lock the stream row first so a concurrent append waits and then sees the stream gone.
        batch.BatchCommands.Add(Command("select 1 from streams where id = $1 for update", streamId));
        batch.BatchCommands.Add(Command("delete from data_keys where device_id = $1", streamId));
        batch.BatchCommands.Add(Command("delete from push_events where stream_id = $1", streamId));
        batch.BatchCommands.Add(Command("delete from events where stream_id = $1", streamId));
        batch.BatchCommands.Add(Command("delete from streams where id = $1", streamId));
        foreach (var hook in _deletionHooks)
        {
            hook.OnDelete(batch, streamId);
        }

        await batch.ExecuteNonQueryAsync(ct);
        var deleted = (long)batch.BatchCommands[2].RecordsAffected + batch.BatchCommands[3].RecordsAffected;
        await tx.CommitAsync(ct);
        return deleted;
    }

    /// <summary>Creates the push partitions of the given UTC days if they are missing.</summary>
    public async Task EnsurePushPartitionsAsync(DateOnly from, DateOnly to, CancellationToken ct = default)
    {
        for (var day = from; day <= to; day = day.AddDays(1))
        {
            await EnsureDayAsync(day, ct);
        }
    }

    /// <summary>
    /// Removes push events older than <paramref name="cutoff"/>: partitions whose whole day is before the cutoff are
    /// counted and dropped; in the day that contains the cutoff, rows are deleted in bounded batches so ingestion is
    /// never blocked for long. With <paramref name="dryRun"/> nothing is removed and the counts say what would be.
    /// </summary>
    public async Task<PurgeResult> PurgePushEventsAsync(DateTimeOffset cutoff, int batchSize, bool dryRun, CancellationToken ct = default)
    {
        var partitions = new List<(string Name, DateTimeOffset Upper)>();
        await using (var cmd = _dataSource.CreateCommand("""
            select c.relname, pg_get_expr(c.relpartbound, c.oid)
            from pg_inherits i join pg_class c on c.oid = i.inhrelid
            where i.inhparent = 'push_events'::regclass
            """))
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                var name = reader.GetString(0);
                if (TryParseDay(name, out var day))
                {
                    partitions.Add((name, new DateTimeOffset(day.AddDays(1).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero)));
                }
            }
        }

        var dropped = 0;
        var deleted = 0L;
        foreach (var (name, upper) in partitions.OrderBy(p => p.Upper))
        {
            if (upper > cutoff)
            {
                continue;
            }

            if (!dryRun)
            {
                await using var count = _dataSource.CreateCommand($"select count(*) from \"{name}\"");
                deleted += (long)(await count.ExecuteScalarAsync(ct))!;
                // A plain DROP takes an ACCESS EXCLUSIVE lock on the parent only for a moment; appends go to today.
                await using var drop = _dataSource.CreateCommand($"drop table if exists \"{name}\"");
                await drop.ExecuteNonQueryAsync(ct);
                if (TryParseDay(name, out var day))
                {
                    _partitions.TryRemove(day, out _);
                }
            }

            dropped++;
        }

        if (dryRun)
        {
            await using var count = _dataSource.CreateCommand("select count(*) from push_events where \"timestamp\" < $1");
            count.Parameters.Add(new() { Value = cutoff });
            return new PurgeResult(dropped, (long)(await count.ExecuteScalarAsync(ct))!);
        }

        while (true)
        {
            await using var delete = _dataSource.CreateCommand("""
                delete from push_events where (seq, "timestamp") in (
                    select seq, "timestamp" from push_events where "timestamp" < $1 limit $2)
                """);
            delete.Parameters.Add(new() { Value = cutoff });
            delete.Parameters.Add(new() { Value = batchSize });
            var n = await delete.ExecuteNonQueryAsync(ct);
            deleted += n;
            if (n < batchSize)
            {
                break;
            }
        }

        return new PurgeResult(dropped, deleted);
    }

    private static bool TryParseDay(string partition, out DateOnly day) =>
        DateOnly.TryParseExact(partition.Replace("push_events_", "", StringComparison.Ordinal), "yyyyMMdd",
            CultureInfo.InvariantCulture, DateTimeStyles.None, out day);

    private async Task EnsurePartitionAsync(DateTimeOffset now, IReadOnlyList<PendingAppend> batch, CancellationToken ct)
    {
        var day = DateOnly.FromDateTime(now.UtcDateTime);
        if (_partitions.ContainsKey(day))
        {
            return;
        }

        foreach (var p in batch)
        {
            foreach (var e in p.Events)
            {
                if (Events.EventTypes.IsPushEvent(e.GetType()))
                {
                    await EnsureDayAsync(day, ct);
                    return;
                }
            }
        }
    }

    private async Task EnsureDayAsync(DateOnly day, CancellationToken ct)
    {
        if (_partitions.ContainsKey(day))
        {
            return;
        }

        await using var cmd = _dataSource.CreateCommand("select monal_ensure_push_partition($1)");
        cmd.Parameters.Add(new() { Value = day });
        await cmd.ExecuteNonQueryAsync(ct);
        _partitions[day] = true;
    }

    private static NpgsqlBatchCommand Command(string sql, Guid id)
    {
        var c = new NpgsqlBatchCommand(sql);
        c.Parameters.Add(new() { Value = id });
        return c;
    }
}
