using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.Faults;
using Npgsql;
using NpgsqlTypes;

namespace Monal.Push.Ledger.EventStore;

public sealed partial class EventStore
{
    // One statement appends a whole batch: it upserts the streams rows (in id order, so two batches never
    // deadlock on them), checks expected versions, takes global positions in append order and inserts into
    // both event tables, counting its push events in push_event_days (the row of its day and its own backend,
    // which no concurrent transaction writes; migrations/0006). The preceding pg_current_xact_id() gives the
    // transaction its xid before any position is drawn; EventFeed's gap proof rests on that ordering.
    internal const string AppendSql = """
        with u as (
            select * from unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[]) as u(id, type, cnt, expected)
        ), s as (
            insert into streams as t (id, type, version, created_at, updated_at)
            select id, type, cnt, $5, $5 from u order by id
            on conflict (id) do update set version = t.version + excluded.version, updated_at = excluded.updated_at
            returning t.id, t.version
        ), j as (
            select x.ord, x.stream_id, s.version - u.cnt + x.off as version, x.type, x.data, x.meta, x.is_push,
                   case when u.expected >= 0 and s.version - u.cnt <> u.expected
                        then monal_version_conflict(u.id, u.expected, s.version - u.cnt) end as conflict
            from unnest($6::int[], $7::uuid[], $8::bigint[], $9::text[], $10::jsonb[], $11::jsonb[], $12::bool[])
                 as x(ord, stream_id, off, type, data, meta, is_push)
            join s on s.id = x.stream_id
            join u on u.id = x.stream_id
        ), e as (
            select o.*, nextval('event_seq') as seq from (select * from j order by ord) o
        ), i1 as (
            insert into events (seq, stream_id, version, type, data, metadata, "timestamp")
            select seq, stream_id, version, type, data, meta, $5 from e where not is_push
        ), i2 as (
            insert into push_events (seq, stream_id, version, type, data, metadata, "timestamp")
            select seq, stream_id, version, type, data, meta, $5 from e where is_push
        ), c as (
            insert into push_event_days as t (day, backend, events)
            select ($5 at time zone 'UTC')::date, pg_backend_pid(), count(*) from e where is_push having count(*) > 0
            on conflict (day, backend) do update set events = t.events + excluded.events
        )
        select ord, seq, version from e order by ord
        """;

    /// <summary>
    /// Appends events to a stream and returns once they are durably committed. Without an expected version the
    /// append joins the group commit (when enabled); conflicts surface as <see cref="StreamVersionConflictException"/>.
    /// </summary>
    public Task<AppendResult> AppendAsync(
        Guid streamId,
        string streamType,
        ExpectedVersion expected,
        IReadOnlyList<object> events,
        EventMetadata? metadata = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentException.ThrowIfNullOrEmpty(streamType);
        if (events.Count == 0)
        {
            throw new ArgumentException("Append at least one event.", nameof(events));
        }

        var pending = new PendingAppend(streamId, streamType, expected, events, metadata);
        if (_committer is not null)
        {
            return _committer.EnqueueAsync(pending, ct);
        }

        return AppendAloneAsync(pending, ct);
    }

    private async Task<AppendResult> AppendAloneAsync(PendingAppend pending, CancellationToken ct)
    {
        await ExecuteBatchAsync([pending], ct);
        return await pending.Completion.Task;
    }

    /// <summary>
    /// Commits a batch in one round trip and completes each caller. If the shared transaction fails for a reason
    /// that may belong to one caller only (a conflict, a refusal, a deadlock), each append is retried alone so
    /// that only the culprit fails. Connection failures fail every caller: none of them was told "done".
    /// </summary>
    internal async Task ExecuteBatchAsync(IReadOnlyList<PendingAppend> batch, CancellationToken ct)
    {
        try
        {
            try
            {
                await CommitAsync(batch, ct);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.CheckViolation && ex.TableName == "push_events")
            {
                // Another process dropped a partition we had cached (a purge with a moved clock): create it again.
                _partitions.Clear();
                await CommitAsync(batch, ct);
            }
        }
        catch (PostgresException ex) when (batch.Count > 1 && IsPerCaller(ex))
        {
            Log.BatchSplit(_logger, batch.Count, ex.SqlState);
            foreach (var single in batch)
            {
                await ExecuteBatchAsync([single], ct);
            }
        }
        catch (PostgresException ex) when (batch.Count == 1)
        {
            if (TransientFaults.IsTransientSqlState(ex.SqlState))
            {
                Availability.Failed("append", TransientFaults.Describe(ex));
            }

            LedgerMetrics.AppendFailures.Add(1, new KeyValuePair<string, object?>("sqlstate_class", ex.SqlState[..2]));
            batch[0].Completion.TrySetException(Translate(ex, batch[0]));
        }
        catch (Exception ex)
        {
            if (TransientFaults.IsTransient(ex, CancellationToken.None))
            {
                Availability.Failed("append", TransientFaults.Describe(ex));
            }

            Log.AppendFailed(_logger, batch.Count, ex);
            LedgerMetrics.AppendFailures.Add(batch.Count, new KeyValuePair<string, object?>("sqlstate_class", "connection"));
            foreach (var p in batch)
            {
                p.Completion.TrySetException(ex);
            }
        }
    }

    private static bool IsPerCaller(PostgresException ex) =>
        ex.SqlState is LedgerSqlStates.VersionConflict or LedgerSqlStates.ProjectionRefused or PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure
        || ex.SqlState.StartsWith("23", StringComparison.Ordinal) || ex.SqlState.StartsWith("22", StringComparison.Ordinal);

    private static Exception Translate(PostgresException ex, PendingAppend p) => ex.SqlState switch
    {
        LedgerSqlStates.VersionConflict => new StreamVersionConflictException(p.StreamId, p.Expected.Value, ex),
        PostgresErrorCodes.UniqueViolation when ex.ConstraintName == "events_stream_version_key" =>
            new StreamVersionConflictException(p.StreamId, p.Expected.Value, ex),
        LedgerSqlStates.ProjectionRefused => new AppendRejectedException(ex.ConstraintName ?? "refused by a projection", ex),
        _ => ex,
    };

    private async Task CommitAsync(IReadOnlyList<PendingAppend> batch, CancellationToken ct)
    {
        var now = _clock.GetUtcNow();
        await EnsurePartitionAsync(now, batch, ct);

        // Aggregate per stream: one streams row per distinct stream, in id order; events keep caller order.
        var byStream = new SortedDictionary<Guid, (string Type, long Count, long Expected)>();
        var total = 0;
        foreach (var p in batch)
        {
            total += p.Events.Count;
            if (byStream.TryGetValue(p.StreamId, out var s))
            {
                byStream[p.StreamId] = (s.Type, s.Count + p.Events.Count, s.Expected);
            }
            else
            {
                byStream[p.StreamId] = (p.StreamType, p.Events.Count, p.Expected.Value);
            }
        }

        var ids = new Guid[byStream.Count];
        var types = new string[byStream.Count];
        var counts = new long[byStream.Count];
        var expected = new long[byStream.Count];
        var i = 0;
        foreach (var (id, s) in byStream)
        {
            ids[i] = id;
            types[i] = s.Type;
            counts[i] = s.Count;
            expected[i] = s.Expected;
            i++;
        }

        var ord = new int[total];
        var eStream = new Guid[total];
        var eOff = new long[total];
        var eType = new string[total];
        var eData = new byte[total][];
        var eMeta = new byte[]?[total];
        var ePush = new bool[total];
        var offsets = new Dictionary<Guid, long>(byStream.Count);
        var pendingEvents = _inline.Length > 0 ? new List<PendingEvent>(total) : null;
        var n = 0;
        foreach (var p in batch)
        {
            var meta = p.Metadata is null ? null : System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(p.Metadata, LedgerJson.Default.EventMetadata);
            foreach (var data in p.Events)
            {
                offsets[p.StreamId] = offsets.GetValueOrDefault(p.StreamId) + 1;
                var type = data.GetType();
                ord[n] = n;
                eStream[n] = p.StreamId;
                eOff[n] = offsets[p.StreamId];
                eType[n] = EventTypes.NameOf(type);
                eData[n] = EventTypes.Serialize(data);
                eMeta[n] = meta;
                ePush[n] = EventTypes.IsPushEvent(type);
                pendingEvents?.Add(new PendingEvent(p.StreamId, data, now));
                n++;
            }
        }

        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        // No explicit transaction: the statements of one batch run in one implicit transaction and one round trip.
        await using var cmd = new NpgsqlBatch(connection);
        cmd.BatchCommands.Add(new NpgsqlBatchCommand("select pg_current_xact_id()"));
        var append = new NpgsqlBatchCommand(AppendSql);
        append.Parameters.Add(new() { Value = ids, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        append.Parameters.Add(new() { Value = types, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        append.Parameters.Add(new() { Value = counts, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        append.Parameters.Add(new() { Value = expected, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        append.Parameters.Add(new() { Value = now, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        append.Parameters.Add(new() { Value = ord, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        append.Parameters.Add(new() { Value = eStream, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        append.Parameters.Add(new() { Value = eOff, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        append.Parameters.Add(new() { Value = eType, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        append.Parameters.Add(new() { Value = eData, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        append.Parameters.Add(new() { Value = eMeta, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        append.Parameters.Add(new() { Value = ePush, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Boolean });
        cmd.BatchCommands.Add(append);
        List<AfterCommit>? afterCommit = null;
        if (pendingEvents is not null)
        {
            foreach (var projection in _inline)
            {
                if (projection.Project(cmd, pendingEvents) is { } then)
                {
                    (afterCommit ??= []).Add(then);
                }
            }
        }

        var seqs = new long[total];
        var versions = new long[total];
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
        {
            await reader.NextResultAsync(ct); // pg_current_xact_id
            while (await reader.ReadAsync(ct))
            {
                var o = reader.GetInt32(0);
                seqs[o] = reader.GetInt64(1);
                versions[o] = reader.GetInt64(2);
            }

            while (await reader.NextResultAsync(ct))
            {
                // Drain the projection and notify statements so their errors surface here.
            }
        }

        Availability.Succeeded();
        LedgerMetrics.BatchSize.Record(batch.Count);
        LedgerMetrics.EventsAppended.Add(total);
        BatchCommitted?.Invoke(batch.Count);
        if (afterCommit is not null)
        {
            // Before the callers resume: a push claimed in this batch is in the dispatcher's hands by then.
            foreach (var then in afterCommit)
            {
                then();
            }
        }

        var last = -1;
        foreach (var p in batch)
        {
            last += p.Events.Count;
            p.Completion.TrySetResult(new AppendResult(versions[last], seqs[last]));
        }

        _notifier.Signal();
    }
}

/// <summary>One caller's append waiting for its commit.</summary>
internal sealed class PendingAppend(
    Guid streamId,
    string streamType,
    ExpectedVersion expected,
    IReadOnlyList<object> events,
    EventMetadata? metadata)
{
    public Guid StreamId { get; } = streamId;
    public string StreamType { get; } = streamType;
    public ExpectedVersion Expected { get; } = expected;
    public IReadOnlyList<object> Events { get; } = events;
    public EventMetadata? Metadata { get; } = metadata;
    public TaskCompletionSource<AppendResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
