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
        with batch_streams as (
            select * from unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[]) as b(id, type, cnt, expected)
        ), upserted_streams as (
            insert into streams as t (id, type, version, created_at, updated_at)
            select id, type, cnt, $5, $5 from batch_streams order by id
            on conflict (id) do update set version = t.version + excluded.version, updated_at = excluded.updated_at
            returning t.id, t.version
        ), versioned_events as (
            select x.ord, x.stream_id, s.version - b.cnt + x.off as version, x.type, x.data, x.meta, x.is_push,
                   case when b.expected >= 0 and s.version - b.cnt <> b.expected
                        then monal_version_conflict(b.id, b.expected, s.version - b.cnt) end as conflict
            from unnest($6::int[], $7::uuid[], $8::bigint[], $9::text[], $10::jsonb[], $11::jsonb[], $12::bool[])
                 as x(ord, stream_id, off, type, data, meta, is_push)
            join upserted_streams s on s.id = x.stream_id
            join batch_streams b on b.id = x.stream_id
        ), positioned_events as (
            select o.*, nextval('event_seq') as seq from (select * from versioned_events order by ord) o
        ), inserted_events as (
            insert into events (seq, stream_id, version, type, data, metadata, "timestamp")
            select seq, stream_id, version, type, data, meta, $5 from positioned_events where not is_push
        ), inserted_push_events as (
            insert into push_events (seq, stream_id, version, type, data, metadata, "timestamp")
            select seq, stream_id, version, type, data, meta, $5 from positioned_events where is_push
        ), counted_push_days as (
            insert into push_event_days as t (day, backend, events)
            select ($5 at time zone 'UTC')::date, pg_backend_pid(), count(*) from positioned_events where is_push having count(*) > 0
            on conflict (day, backend) do update set events = t.events + excluded.events
        )
        select ord, seq, version from positioned_events order by ord
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
        => SubmitAsync(new PendingAppend(streamId, streamType, expected, Checked(events, streamType), metadata), ct);

    /// <summary>
    /// Appends events nobody waits on promptly (a push's outcome) to a stream, at whatever version it is, and returns
    /// once they are durably committed. With group commit the append may wait up to <c>Ledger:DeferredLinger</c> for
    /// other deferred appends, so that at moderate rates they share a transaction instead of each committing a small
    /// one; the inline projections see them as any other append.
    /// </summary>
    public Task<AppendResult> AppendDeferredAsync(Guid streamId, string streamType, IReadOnlyList<object> events, CancellationToken ct = default)
        => SubmitAsync(new PendingAppend(streamId, streamType, ExpectedVersion.Any, Checked(events, streamType), null) { Deferred = true }, ct);

    private static IReadOnlyList<object> Checked(IReadOnlyList<object> events, string streamType)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentException.ThrowIfNullOrEmpty(streamType);
        if (events.Count == 0)
        {
            throw new ArgumentException("Append at least one event.", nameof(events));
        }

        return events;
    }

    // Through the group commit when it is on, else alone in a transaction of its own.
    private Task<AppendResult> SubmitAsync(PendingAppend pending, CancellationToken ct) =>
        _committer is not null ? _committer.EnqueueAsync(pending, ct) : AppendAloneAsync(pending, ct);

    private async Task<AppendResult> AppendAloneAsync(PendingAppend pending, CancellationToken ct)
    {
        await ExecuteBatchAsync([pending], ct);
        return await pending.Completion.Task;
    }

    /// <summary>
    /// Commits a batch in one round trip and completes each caller. If the shared transaction fails for a reason
    /// that may belong to one caller only (a conflict, a refusal, a deadlock), the batch is split in halves and each
    /// half committed in turn, again split while it fails, so that only the culprits fail: one refused append in a
    /// batch of n costs about 2 log2(n) commits instead of n (each append alone), which a steady trickle of refusals
    /// (publishes to erased devices) made the whole ledger pay. Connection failures fail every caller: none of them
    /// was told "done".
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
            // In order: appends to one stream keep their order across the halves.
            var half = batch.Count / 2;
            await ExecuteBatchAsync([.. batch.Take(half)], ct);
            await ExecuteBatchAsync([.. batch.Skip(half)], ct);
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

    // Shapes the batch, sends it with the inline projections' statements in one round trip, then completes the callers.
    private async Task CommitAsync(IReadOnlyList<PendingAppend> batch, CancellationToken ct)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var now = _clock.GetUtcNow();
        await EnsurePartitionAsync(now, batch, ct);
        var shape = AppendShape.Of(batch, now, collectEvents: _inline.Length > 0);

        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        // No explicit transaction: the statements of one batch run in one implicit transaction and one round trip.
        await using var command = new NpgsqlBatch(connection);
        // Every statement of an append takes arrays (unnest($1)). With the default plan_cache_mode, PostgreSQL sees a
        // custom plan (which knows the arrays' lengths) estimated cheaper than the generic one and so plans each of
        // them again at every execution, the statements inside our PL/pgSQL functions too: the device check took
        // 0.65 ms a call that way and 0.40 ms with generic plans (pgbench; docs/benchmarks.md, "Issue 16, third
        // pass"). For this transaction only, every statement keeps the plan its connection made once.
        command.BatchCommands.Add(TransactionSetting.GenericPlans());
        command.BatchCommands.Add(new NpgsqlBatchCommand("select pg_current_xact_id()"));
        command.BatchCommands.Add(shape.ToAppendCommand());
        var afterCommit = AddInlineProjections(command, shape.Events);
        var (versions, sequences) = await ExecuteAsync(command, shape.EventCount, ct);

        Availability.Succeeded();
        LedgerMetrics.CommitDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
        LedgerMetrics.BatchSize.Record(batch.Count);
        LedgerMetrics.EventsAppended.Add(shape.EventCount);
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
            p.Completion.TrySetResult(new AppendResult(versions[last], sequences[last]));
        }

        _notifier.Signal();
    }

    private List<AfterCommit>? AddInlineProjections(NpgsqlBatch command, IReadOnlyList<PendingEvent>? events)
    {
        List<AfterCommit>? afterCommit = null;
        if (events is null)
        {
            return null;
        }

        foreach (var projection in _inline)
        {
            if (projection.Project(command, events) is { } then)
            {
                (afterCommit ??= []).Add(then);
            }
        }

        return afterCommit;
    }

    // Sends the batch and reads each event's version and position (indexed by its place in the batch).
    private static async Task<(long[] Versions, long[] Sequences)> ExecuteAsync(NpgsqlBatch command, int eventCount, CancellationToken ct)
    {
        var sequences = new long[eventCount];
        var versions = new long[eventCount];
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.NextResultAsync(ct); // set_config (TransactionSetting.GenericPlans)
        await reader.NextResultAsync(ct); // pg_current_xact_id
        while (await reader.ReadAsync(ct))
        {
            var ord = reader.GetInt32(0);
            sequences[ord] = reader.GetInt64(1);
            versions[ord] = reader.GetInt64(2);
        }

        while (await reader.NextResultAsync(ct))
        {
            // Drain the projection statements so their errors surface here.
        }

        return (versions, sequences);
    }

    /// <summary>
    /// A batch of appends as the append statement takes it: one row per distinct stream (in id order, with the sum
    /// of its events and the first caller's expected version) and one row per event, in caller order.
    /// </summary>
    private sealed class AppendShape
    {
        private readonly DateTimeOffset _now;
        private Guid[] _streamIds = [];
        private string[] _streamTypes = [];
        private long[] _streamCounts = [];
        private long[] _expected = [];
        private int[] _ord = [];
        private Guid[] _eventStreams = [];
        private long[] _offsets = [];
        private string[] _eventTypes = [];
        private byte[][] _data = [];
        private byte[]?[] _metadata = [];
        private bool[] _isPush = [];

        private AppendShape(DateTimeOffset now) => _now = now;

        public int EventCount => _ord.Length;

        // The events as inline projections see them, or null when there are none to show them to.
        public List<PendingEvent>? Events { get; private set; }

        public static AppendShape Of(IReadOnlyList<PendingAppend> batch, DateTimeOffset now, bool collectEvents)
        {
            var shape = new AppendShape(now);
            var total = shape.ShapeStreams(batch);
            shape.ShapeEvents(batch, total, collectEvents);
            return shape;
        }

        public NpgsqlBatchCommand ToAppendCommand() => new NpgsqlBatchCommand(AppendSql)
            .AddArray(_streamIds, NpgsqlDbType.Uuid)
            .AddArray(_streamTypes, NpgsqlDbType.Text)
            .AddArray(_streamCounts, NpgsqlDbType.Bigint)
            .AddArray(_expected, NpgsqlDbType.Bigint)
            .AddValue(_now, NpgsqlDbType.TimestampTz)
            .AddArray(_ord, NpgsqlDbType.Integer)
            .AddArray(_eventStreams, NpgsqlDbType.Uuid)
            .AddArray(_offsets, NpgsqlDbType.Bigint)
            .AddArray(_eventTypes, NpgsqlDbType.Text)
            .AddArray(_data, NpgsqlDbType.Jsonb)
            .AddArray(_metadata, NpgsqlDbType.Jsonb)
            .AddArray(_isPush, NpgsqlDbType.Boolean);

        private int ShapeStreams(IReadOnlyList<PendingAppend> batch)
        {
            var byStream = new SortedDictionary<Guid, (string Type, long Count, long Expected)>();
            var total = 0;
            foreach (var p in batch)
            {
                total += p.Events.Count;
                byStream[p.StreamId] = byStream.TryGetValue(p.StreamId, out var s)
                    ? (s.Type, s.Count + p.Events.Count, s.Expected)
                    : (p.StreamType, p.Events.Count, p.Expected.Value);
            }

            _streamIds = new Guid[byStream.Count];
            _streamTypes = new string[byStream.Count];
            _streamCounts = new long[byStream.Count];
            _expected = new long[byStream.Count];
            var i = 0;
            foreach (var (id, s) in byStream)
            {
                (_streamIds[i], _streamTypes[i], _streamCounts[i], _expected[i]) = (id, s.Type, s.Count, s.Expected);
                i++;
            }

            return total;
        }

        private void ShapeEvents(IReadOnlyList<PendingAppend> batch, int total, bool collectEvents)
        {
            _ord = new int[total];
            _eventStreams = new Guid[total];
            _offsets = new long[total];
            _eventTypes = new string[total];
            _data = new byte[total][];
            _metadata = new byte[]?[total];
            _isPush = new bool[total];
            Events = collectEvents ? new List<PendingEvent>(total) : null;
            var offsets = new Dictionary<Guid, long>(_streamIds.Length);
            var n = 0;
            foreach (var p in batch)
            {
                var meta = p.Metadata is null ? null : System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(p.Metadata, LedgerJson.Default.EventMetadata);
                foreach (var data in p.Events)
                {
                    var offset = offsets.GetValueOrDefault(p.StreamId) + 1;
                    offsets[p.StreamId] = offset;
                    var type = data.GetType();
                    _ord[n] = n;
                    _eventStreams[n] = p.StreamId;
                    _offsets[n] = offset;
                    _eventTypes[n] = EventTypes.NameOf(type);
                    _data[n] = EventTypes.Serialize(data);
                    _metadata[n] = meta;
                    _isPush[n] = EventTypes.IsPushEvent(type);
                    Events?.Add(new PendingEvent(p.StreamId, data, _now));
                    n++;
                }
            }
        }
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

    /// <summary>When it was made (<see cref="System.Diagnostics.Stopwatch"/> ticks): its wait for a writer is measured from here.</summary>
    public long QueuedAt { get; } = System.Diagnostics.Stopwatch.GetTimestamp();

    public TaskCompletionSource<AppendResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Appended with <see cref="EventStore.AppendDeferredAsync"/>: it may wait for others to share its commit.</summary>
    public bool Deferred { get; init; }
}
