using System.Collections.Concurrent;
using Monal.Push.Ledger.Events;
using Npgsql;

namespace Monal.Push.Ledger.EventStore;

/// <summary>
/// What a push-event purge removed (or would remove, in a dry run): whole days dropped (no table scan), and the
/// events removed from dropped partitions (counted exactly from push_event_days, not by reading them) and from
/// batches in the boundary day.
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
    public Task<long> DeleteStreamAsync(Guid streamId, CancellationToken ct = default) => DeleteStreamAsync(streamId, null, ct);

    /// <summary>
    /// Hard-deletes a stream as <see cref="DeleteStreamAsync(Guid, CancellationToken)"/> does, but only if
    /// <paramref name="condition"/> (a SQL boolean expression over <c>$1</c>, the stream id) still holds once the
    /// stream's row is locked, so no append can change what it tests meanwhile. Returns -1 when it does not hold
    /// (nothing is deleted), else the number of events deleted.
    /// </summary>
    public async Task<long> DeleteStreamAsync(Guid streamId, string? condition, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using var batch = new NpgsqlBatch(connection, tx);
        // Lock the stream row first so a concurrent append waits and then sees the stream gone.
        batch.BatchCommands.Add(Command("select 1 from streams where id = $1 for update", streamId));
        if (condition is not null)
        {
            await batch.ExecuteNonQueryAsync(ct);
            batch.BatchCommands.Clear();
            await using var check = new NpgsqlCommand($"select coalesce(({condition}), false)", connection, tx);
            check.Parameters.Add(new() { Value = streamId });
            if (await check.ExecuteScalarAsync(ct) is not true)
            {
                await tx.RollbackAsync(ct);
                return -1;
            }
        }

        var first = batch.BatchCommands.Count;
        batch.BatchCommands.Add(Command("delete from data_keys where device_id = $1", streamId));
        // Its push events leave the per-day counts first (see migrations/0006); the stream lock keeps them from moving.
        batch.BatchCommands.Add(Command("""
            insert into push_event_days as t (day, backend, events)
            select ("timestamp" at time zone 'UTC')::date, pg_backend_pid(), -count(*) from push_events where stream_id = $1 group by 1
            on conflict (day, backend) do update set events = t.events + excluded.events
            """, streamId));
        batch.BatchCommands.Add(Command("delete from push_events where stream_id = $1", streamId));
        batch.BatchCommands.Add(Command("delete from events where stream_id = $1", streamId));
        batch.BatchCommands.Add(Command("delete from streams where id = $1", streamId));
        foreach (var hook in _deletionHooks)
        {
            hook.OnDelete(batch, streamId);
        }

        await batch.ExecuteNonQueryAsync(ct);
        var deleted = (long)batch.BatchCommands[first + 2].RecordsAffected + batch.BatchCommands[first + 3].RecordsAffected;
        await tx.CommitAsync(ct);
        return deleted;
    }

    /// <summary>
    /// Deletes the events of one type in a stream that are older than <paramref name="keepFromVersion"/>: facts a
    /// later event of the same type supersedes and that the privacy policy does not let us keep as a history (e.g.
    /// every renewal time of a device, when only the latest is listed). Returns the number deleted.
    /// </summary>
    public async Task<long> DeleteSupersededAsync(Guid streamId, Type eventType, long keepFromVersion, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(eventType);
        await using var cmd = _dataSource.CreateCommand("delete from events where stream_id = $1 and type = $2 and version < $3");
        cmd.Parameters.Add(new() { Value = streamId });
        cmd.Parameters.Add(new() { Value = EventTypes.NameOf(eventType) });
        cmd.Parameters.Add(new() { Value = keepFromVersion });
        return await cmd.ExecuteNonQueryAsync(ct);
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
    /// Removes push events older than <paramref name="cutoff"/> without reading the ones it removes: every day partition
    /// wholly before the cutoff is detached (or dropped, see <see cref="LedgerOptions.PartitionRemoval"/>) and dropped,
    /// and its events are counted exactly from push_event_days (kept by the append in its own transaction) in the
    /// transaction that drops it. In the day that contains the cutoff, rows are deleted in bounded batches, subtracted
    /// from that day's count as they go. Appends into today's partition are never blocked by the default removal.
    /// With <paramref name="dryRun"/> nothing is removed and the events that would be are counted row by row.
    /// A partition left half-removed by an interrupted run (detach pending, or detached but not dropped) is finished.
    /// </summary>
    public async Task<PurgeResult> PurgePushEventsAsync(DateTimeOffset cutoff, int batchSize, bool dryRun, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        var days = await PushDayTable.ReadAsync(_dataSource, ct);
        var expired = days.Where(d => d.Upper <= cutoff).OrderBy(d => d.Day).ToList();
        if (dryRun)
        {
            await using var count = _dataSource.CreateCommand("select count(*) from push_events where \"timestamp\" < $1");
            count.Parameters.Add(new() { Value = cutoff });
            return new PurgeResult(expired.Count, (long)(await count.ExecuteScalarAsync(ct))!);
        }

        var deleted = 0L;
        var ready = new List<PushDayTable>();
        foreach (var table in expired)
        {
            _partitions.TryRemove(table.Day, out _);
            if (await DetachAsync(table, ct))
            {
                ready.Add(table);
            }
        }

        var (dropped, events) = await DropDaysAsync(ready, ct);
        deleted += events;

        var boundary = days.FirstOrDefault(d => d.State == PushDayState.Attached && d.Lower < cutoff && d.Upper > cutoff);
        if (boundary.Name is not null)
        {
            deleted += await TrimDayAsync(boundary, cutoff, batchSize, ct);
        }

        return new PurgeResult(dropped, deleted);
    }

    // With DetachConcurrently, detaches the partition (or finishes an interrupted detach); false when another purge
    // removed it first. Not in a transaction block (PostgreSQL refuses it there): the parent is locked SHARE UPDATE
    // EXCLUSIVE only, and the detach waits for the transactions that may still see the partition.
    private async Task<bool> DetachAsync(PushDayTable table, CancellationToken ct)
    {
        if (_options.PartitionRemoval != PartitionRemoval.DetachConcurrently || table.State == PushDayState.Detached)
        {
            return true;
        }

        var verb = table.State == PushDayState.DetachPending ? "finalize" : "concurrently";
        await using var detach = _dataSource.CreateCommand($"alter table push_events detach partition \"{table.Name}\" {verb}");
        detach.CommandTimeout = 0;
        try
        {
            await detach.ExecuteNonQueryAsync(ct);
            return true;
        }
        catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.UndefinedTable)
        {
            return false;
        }
    }

    // Drops the days' tables and takes their counts out of push_event_days, all in one transaction (one commit). Once
    // detached nothing can reach a table, so the drop locks nobody else out; with a plain DROP the parent's ACCESS
    // EXCLUSIVE lock (held to the commit) waits for every writer first, so the counts read after it are final. When
    // another purge dropped one of them meanwhile, each day is removed on its own instead.
    private async Task<(int Dropped, long Events)> DropDaysAsync(List<PushDayTable> tables, CancellationToken ct)
    {
        if (tables.Count == 0)
        {
            return (0, 0);
        }

        try
        {
            return (tables.Count, await DropInOneTransactionAsync(tables, ct));
        }
        catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.UndefinedTable && tables.Count > 1)
        {
            var dropped = 0;
            var events = 0L;
            foreach (var table in tables)
            {
                try
                {
                    events += await DropInOneTransactionAsync([table], ct);
                    dropped++;
                }
                catch (PostgresException one) when (one.SqlState is PostgresErrorCodes.UndefinedTable)
                {
                    // Removed by the other purge, which recorded it.
                }
            }

            return (dropped, events);
        }
        catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.UndefinedTable)
        {
            return (0, 0);
        }
    }

    private async Task<long> DropInOneTransactionAsync(IReadOnlyList<PushDayTable> tables, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        foreach (var table in tables)
        {
            await using var drop = new NpgsqlCommand($"drop table \"{table.Name}\"", connection, tx);
            await drop.ExecuteNonQueryAsync(ct);
        }

        await using var count = new NpgsqlCommand("""
            with d as (delete from push_event_days where day = any($1) returning events)
            select coalesce(sum(events), 0)::bigint from d
            """, connection, tx);
        count.Parameters.Add(new() { Value = tables.Select(t => t.Day).ToArray() });
        var events = (long)(await count.ExecuteScalarAsync(ct))!;
        await tx.CommitAsync(ct);
        return events;
    }

    // Deletes the rows before the cutoff from the partition holding it, batch by batch, each batch subtracting
    // itself from the day's count in its own transaction.
    private async Task<long> TrimDayAsync(PushDayTable table, DateTimeOffset cutoff, int batchSize, CancellationToken ct)
    {
        var deleted = 0L;
        while (true)
        {
            await using var delete = _dataSource.CreateCommand($"""
                with d as (
                    delete from "{table.Name}"
                    where ctid = any(array(select ctid from "{table.Name}" where "timestamp" < $1 limit $2))
                    returning 1
                ), c as (
                    insert into push_event_days as t (day, backend, events)
                    select $3, pg_backend_pid(), -count(*) from d having count(*) > 0
                    on conflict (day, backend) do update set events = t.events + excluded.events
                )
                select count(*) from d
                """);
            delete.Parameters.Add(new() { Value = cutoff });
            delete.Parameters.Add(new() { Value = batchSize });
            delete.Parameters.Add(new() { Value = table.Day });
            long n;
            try
            {
                n = (long)(await delete.ExecuteScalarAsync(ct))!;
            }
            catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.UndefinedTable)
            {
                return deleted;
            }

            deleted += n;
            if (n < batchSize)
            {
                return deleted;
            }
        }
    }

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
