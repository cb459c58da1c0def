using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Delivery.PushModules;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Faults;
using Npgsql;
using NpgsqlTypes;

namespace Monal.Push.Delivery.Dispatching;

/// <summary>
/// Sends every queued push (push_queue, the outbox kept by DeliveryQueueProjection) and records its outcome in the
/// device's stream. Two ways in, one way out:
/// - the fast path: DeliveryQueueProjection claims the pushes due now in their append transaction and, once it has
///   committed, hands them over through DispatcherNode (OnClaimed), so a push leaves without another round trip;
/// - the poller claims due rows (FOR UPDATE SKIP LOCKED): delayed (coalesced) pushes, retries, rows that did not fit in
///   memory, and rows of a node that died, once their lease has passed.
/// A node sends only while it holds the claim: claims are renewed while held, a send is abandoned before its claim
/// lapses, and a stop hands unsent claims back at once. So two nodes never send one push at the same time; after a
/// kill a push may be sent again once, with the same apns-id, and the queue lets only one final outcome into the ledger.
/// </summary>
internal sealed partial class PushDispatcher : BackgroundService
{
    // next_attempt_at is when the poller may next take a row: its due time while unclaimed, its lease's end while
    // claimed (every claim and renewal moves both), its due time again when handed back (not_before: it was due when
    // claimed). So the poller's index scan over next_attempt_at <= now meets only rows it can take, not the thousands
    // a busy node holds claimed, which each poll once walked (part of its 50-120 ms a poll under load, not all:
    // docs/benchmarks.md, "Issue 16, seventh pass"). The claimed_until test stays: rows written before this rule
    // still carry their due time.
    private const string ClaimSql = """
        with due as (
            select push_id from push_queue
            where next_attempt_at <= $1 and not_before <= $1 and (claimed_until is null or claimed_until < $1)
            order by next_attempt_at
            limit $2
            for update skip locked
        )
        update push_queue q set claimed_by = $3, claimed_until = $4, next_attempt_at = $4
        from due where q.push_id = due.push_id
        returning q.push_id, q.device_id, q.requested_at, q.not_before, q.expires_at, q.attempts, q.last_status
        """;

    // Row locks on push_queue are taken in push_id order, as monal_push_queue_finish and _retry take them in the
    // outcome appends, or not waited for at all: the renewal once locked its rows in scan order, and each deadlock
    // with a group commit's finish stalled both for PostgreSQL's deadlock_timeout (1 s) before one was cancelled.
    // A row the renewal skips is being finished (or retried) by an outcome append; if that append fails, the next
    // renewal, a third of a lease later, takes it.
    internal const string RenewSql = """
        with mine as (
            select push_id from push_queue where claimed_by = $2
            for update skip locked
        )
        update push_queue q set claimed_until = $1, next_attempt_at = $1
        from mine where q.push_id = mine.push_id
        returning q.push_id
        """;

    private const string ReleaseSql = """
        with mine as (
            select push_id from push_queue where push_id = any($1) and claimed_by = $2
            order by push_id
            for update
        )
        update push_queue q set claimed_by = null, claimed_until = null, next_attempt_at = q.not_before
        from mine where q.push_id = mine.push_id
        """;

    private const string ReleaseAllSql = """
        with mine as (
            select push_id from push_queue where claimed_by = $1
            order by push_id
            for update
        )
        update push_queue q set claimed_by = null, claimed_until = null, next_attempt_at = q.not_before
        from mine where q.push_id = mine.push_id
        """;

    private readonly EventStore _store;
    private readonly PushModuleRegistry _modules;
    private readonly DataKeys _keys;
    private readonly IDeviceLookup _devices;
    private readonly DispatcherNode _node;
    private readonly DeliveryOptions _options;
    private readonly TimeProvider _clock;
    private readonly KeyedHash _hash;
    private readonly DeliveryMetrics _metrics;
    private readonly ILogger<PushDispatcher> _logger;
    private readonly Channel<QueuedPush> _queue;
    private readonly ConcurrentDictionary<Guid, QueuedPush> _held = new();
    private readonly ConcurrentQueue<Guid> _toRelease = new();
    private readonly ConcurrentDictionary<Task, byte> _sends = new();
    private readonly SemaphoreSlim _slots;
    private readonly CancellationTokenSource _abort = new();
    private volatile bool _running;
    private volatile bool _abandoned;
    private volatile bool _stopping;
    private long _delivered;
    private long _failed;
    private long _retried;
    private long _polls;
    private int _recordingWithoutSlot;

    public PushDispatcher(
        EventStore store,
        PushModuleRegistry modules,
        DataKeys keys,
        IDeviceLookup devices,
        DispatcherNode node,
        IOptions<DeliveryOptions> options,
        TimeProvider clock,
        KeyedHash hash,
        DeliveryMetrics metrics,
        ILogger<PushDispatcher> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _modules = modules;
        _keys = keys;
        _devices = devices;
        _node = node;
        _options = options.Value;
        _clock = clock;
        _hash = hash;
        _metrics = metrics;
        _logger = logger;
        _slots = new SemaphoreSlim(_options.MaxInFlight, _options.MaxInFlight);
        _queue = Channel.CreateBounded<QueuedPush>(new BoundedChannelOptions(_options.QueueCapacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public string NodeId => _node.Id;

    // Pushes claimed by this node and not yet finished (waiting in memory or in flight).
    public int Held => _held.Count;

    public int InFlight => _sends.Count;

    // Outcomes this node recorded: delivered, final failures (including invalid tokens and expiry), transient ones.
    public long Delivered => Interlocked.Read(ref _delivered);

    public long Failed => Interlocked.Read(ref _failed);

    public long Retried => Interlocked.Read(ref _retried);

    // True once a stop has begun (no new work taken; sends in flight are being waited for).
    public bool IsStopping => _stopping;

    // Completed passes of the poller (release, then claim): a test waits for one to prove the poller looked.
    public long Polls => Interlocked.Read(ref _polls);

    // Simulates a killed process (tests): sends are cut off, nothing more is recorded and no claim is handed back,
    // so other nodes take this node's pushes only after their lease.
    public async Task AbandonAsync()
    {
        _abandoned = true;
        _node.StopAccepting();
        await _abort.CancelAsync();
        await StopAsync(CancellationToken.None);
    }

    public override void Dispose()
    {
        _abort.Dispose();
        _slots.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Log.DispatcherStarted(_logger, _node.Id, _options.MaxInFlight, _options.LeaseDuration);
        using var loops = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, _abort.Token);
        _node.Attach(OnClaimed);
        _running = true;
        _node.StartAccepting();
        var poller = Task.Run(() => PollLoopAsync(loops.Token), CancellationToken.None);
        using var renewStop = new CancellationTokenSource();
        var renewer = Task.Run(() => RenewLoopAsync(renewStop.Token), CancellationToken.None);
        try
        {
            await SendLoopAsync(loops.Token);
        }
        catch (OperationCanceledException) when (loops.IsCancellationRequested)
        {
            // Stopping.
        }
        finally
        {
            await StopGracefullyAsync(poller, renewer, renewStop);
        }
    }

    // Called (through DispatcherNode.HandOver) after the append that claimed these pushes committed, on the store's
    // writer: quick, never throws.
    private void OnClaimed(IReadOnlyList<QueuedPush> claimed)
    {
        foreach (var push in claimed)
        {
            if (!_running || !_held.TryAdd(push.PushId, push) || !_queue.Writer.TryWrite(push))
            {
                // Stopping, or memory is full: hand the claim back so the poller (ours or another node's) takes it.
                _held.TryRemove(KeyValuePair.Create(push.PushId, push));
                _toRelease.Enqueue(push.PushId);
            }
        }
    }

    private async Task SendLoopAsync(CancellationToken ct)
    {
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync(ct))
        {
            while (reader.TryRead(out var push))
            {
                try
                {
                    await _slots.WaitAsync(ct);
                }
                catch (OperationCanceledException)
                {
                    Unhold(push, release: true);
                    throw;
                }

                var send = Task.Run(() => SendOneAsync(push), CancellationToken.None);
                _sends.TryAdd(send, 0);
                _ = send.ContinueWith(t => _sends.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
    }

    private async Task PollLoopAsync(CancellationToken ct)
    {
        var backoff = Backoff.ForDatabase();
        while (!ct.IsCancellationRequested)
        {
            var full = false;
            try
            {
                await ReleaseAsync(ct);
                var room = Math.Min(_options.ClaimBatch, _options.QueueCapacity - _held.Count);
                if (room > 0)
                {
                    var claimed = await ClaimAsync(room, ct);
                    full = claimed == room;
                }

                backoff.Reset();
                Interlocked.Increment(ref _polls);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The poller outlives any failure (issue 15): it backs off and polls again.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                if (!await TransientFaults.BackOffAsync(_logger, "delivery poller", ex, backoff, _store.Availability, ct))
                {
                    return;
                }

                continue;
            }

            if (!full)
            {
                await Task.Delay(_options.PollInterval, _clock, ct).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    private async Task<int> ClaimAsync(int max, CancellationToken ct)
    {
        var now = _clock.GetUtcNow();
        var until = now + _options.LeaseDuration;
        await using var batch = QueueStatement.Create(_store.DataSource, ClaimSql, out var cmd);
        cmd.Parameters.Add(new() { Value = now, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = max });
        cmd.Parameters.Add(new() { Value = _node.Id });
        cmd.Parameters.Add(new() { Value = until, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        var n = 0;
        await using var reader = await TransactionSetting.ReadAsync(batch, ct);
        while (await reader.ReadAsync(ct))
        {
            n++;
            var pushId = reader.GetGuid(0);
            var requestedAt = reader.GetFieldValue<DateTimeOffset>(2);
            var notBefore = reader.GetFieldValue<DateTimeOffset>(3);
            var push = new QueuedPush(
                pushId,
                reader.GetGuid(1),
                notBefore > requestedAt ? notBefore : requestedAt,
                reader.GetFieldValue<DateTimeOffset>(4),
                reader.GetInt32(5),
                reader.IsDBNull(6) ? null : reader.GetInt32(6),
                until);
            if (_held.TryGetValue(pushId, out var already))
            {
                // Its lease ran out while it waited here and nobody else took it: it is ours again.
                already.Extend(until, _options.LeaseSafetyMargin, _clock);
            }
            else if (!_held.TryAdd(pushId, push) || !_queue.Writer.TryWrite(push))
            {
                _held.TryRemove(KeyValuePair.Create(pushId, push));
                _toRelease.Enqueue(pushId);
            }
        }

        return n;
    }

    // Keeps this node's claims alive while it holds them. Only rows still claimed by this node are touched: one whose
    // lease ran out and that another node took keeps its old deadline here, and its send is abandoned.
    private async Task RenewLoopAsync(CancellationToken ct)
    {
        var every = _options.LeaseDuration / 3;
        var backoff = Backoff.ForDatabase();
        var failing = false;
        while (!ct.IsCancellationRequested)
        {
            // After a failure, try again soon: claims must be renewed as soon as the database is back.
            var wait = failing ? backoff.Next() : every;
            await Task.Delay(wait, failing ? TimeProvider.System : _clock, ct).ContinueWith(_ => { }, TaskScheduler.Default);
            if (ct.IsCancellationRequested || _held.IsEmpty)
            {
                continue;
            }

            try
            {
                var until = _clock.GetUtcNow() + _options.LeaseDuration;
                await using var batch = QueueStatement.Create(_store.DataSource, RenewSql, out var cmd);
                cmd.Parameters.Add(new() { Value = until, NpgsqlDbType = NpgsqlDbType.TimestampTz });
                cmd.Parameters.Add(new() { Value = _node.Id });
                await using var reader = await TransactionSetting.ReadAsync(batch, ct);
                while (await reader.ReadAsync(ct))
                {
                    if (_held.TryGetValue(reader.GetGuid(0), out var push))
                    {
                        push.Extend(until, _options.LeaseSafetyMargin, _clock);
                    }
                }

                failing = false;
                backoff.Reset();
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The renewer outlives any failure (issue 15); sends stop before their claims lapse.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                failing = true;
                if (TransientFaults.IsTransient(ex, ct))
                {
                    _store.Availability.Failed("delivery lease renewal", TransientFaults.Describe(ex));
                }

                Log.LeaseRenewalFailed(_logger, ex);
            }
        }
    }

    // Hands back claims this node will not send (stopping, or no room in memory).
    private async Task ReleaseAsync(CancellationToken ct)
    {
        if (_toRelease.IsEmpty)
        {
            return;
        }

        var ids = new List<Guid>();
        while (_toRelease.TryDequeue(out var id))
        {
            ids.Add(id);
        }

        try
        {
            await using var batch = QueueStatement.Create(_store.DataSource, ReleaseSql, out var cmd);
            cmd.Parameters.Add(new() { Value = ids.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
            cmd.Parameters.Add(new() { Value = _node.Id });
            await batch.ExecuteNonQueryAsync(ct);
        }
        catch
        {
            // Not handed back yet: the next poll tries again (or the lease ends).
            foreach (var id in ids)
            {
                _toRelease.Enqueue(id);
            }

            throw;
        }
    }

    private async Task StopGracefullyAsync(Task poller, Task renewer, CancellationTokenSource renewStop)
    {
        // 1. Take no new work: the projection stops claiming, the fast path hands back, the poller ends.
        _stopping = true;
        _node.StopAccepting();
        _running = false;
        _node.Detach();
        await poller;

        // 2. What waits in memory was never started: forget it (its claim is handed back below).
        _queue.Writer.TryComplete();
        while (_queue.Reader.TryRead(out var waiting))
        {
            Unhold(waiting, release: true);
        }

        // 3. Let the sends in flight finish and record their outcomes, for a bounded time; then cut them off.
        Log.DispatcherStopping(_logger, _node.Id, _sends.Count);
        if (!_abandoned && !_sends.IsEmpty)
        {
            try
            {
                await Task.WhenAll(_sends.Keys).WaitAsync(_options.ShutdownTimeout, _clock);
            }
            catch (TimeoutException)
            {
                Log.ShutdownTimedOut(_logger, _node.Id, _sends.Count);
                await _abort.CancelAsync();
            }
        }

        await Task.WhenAll(_sends.Keys).ContinueWith(_ => { }, TaskScheduler.Default);
        await renewStop.CancelAsync();
        await renewer;

        // 4. Hand back every claim still ours so another node can take it at once (not after a killed process).
        if (_abandoned)
        {
            Log.DispatcherAbandoned(_logger, _node.Id, _held.Count);
            return;
        }

        var handedBack = 0;
        try
        {
            await using var batch = QueueStatement.Create(_store.DataSource, ReleaseAllSql, out var cmd);
            cmd.Parameters.Add(new() { Value = _node.Id });
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await batch.ExecuteNonQueryAsync(timeout.Token);
            handedBack = cmd.RecordsAffected;
        }
        catch (Exception ex) when (ex is NpgsqlException or IOException or TimeoutException or OperationCanceledException or InvalidOperationException)
        {
            Log.HandBackFailed(_logger, _node.Id, _options.LeaseDuration, ex);
        }

        _held.Clear();
        Log.DispatcherStopped(_logger, _node.Id, handedBack);
    }

    private void Unhold(QueuedPush push, bool release)
    {
        _held.TryRemove(KeyValuePair.Create(push.PushId, push));
        if (release)
        {
            _toRelease.Enqueue(push.PushId);
        }
    }
}
