using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Faults;
using Npgsql;

namespace Monal.Push.Projections.Daemon;

/// <summary>
/// Runs the async projections: each reads the global log with its own <see cref="EventFeed"/> (strictly in order,
/// never past an unproven gap), applies a page and moves its checkpoint in one transaction, then waits for the next
/// append (LISTEN, with a polling fallback).
/// </summary>
/// <remarks>
/// Several <c>serve</c> processes may share a database; only one runs the projections. Leadership is a session-level
/// advisory lock held on a dedicated connection: it vanishes with the leader's session, and the others retry every
/// <see cref="ProjectionsOptions.LeaderRetry"/>. The leader pings that connection at the same interval and stops
/// applying as soon as it fails. Even two leaders at once could not double-count: every page moves its checkpoint
/// from the exact position it was read at (monal_checkpoint_advance), under the checkpoint's row lock.
/// A failed page is logged (no personal data), recorded in last_error and retried after a growing back-off; the
/// checkpoint does not move past it, so no event is ever skipped.
/// </remarks>
internal sealed class ProjectionDaemon(
    EventStore store,
    EventNotifications notifications,
    IEnumerable<IAsyncProjection> projections,
    IOptions<ProjectionsOptions> options,
    ILogger<ProjectionDaemon> logger) : BackgroundService
{
    private const string LeaderLockSql = "select pg_try_advisory_lock(hashtext('monal_projection_daemon'))";
    private const string LeaderUnlockSql = "select pg_advisory_unlock(hashtext('monal_projection_daemon'))";
    private static readonly TimeSpan GapRetry = TimeSpan.FromMilliseconds(50);

    private readonly ProjectionsOptions _options = options.Value;
    private readonly IAsyncProjection[] _projections = [.. projections];
    private volatile bool _isLeader;
    private long _steps;

    /// <summary>True while this process runs the projections.</summary>
    public bool IsLeader => _isLeader;

    /// <summary>Steps tried by the leader's runners (applied or not): a test waits for some to prove they looked.</summary>
    internal long Steps => Interlocked.Read(ref _steps);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.RunDaemon || _projections.Length == 0)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await LeadAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The daemon outlives any failure (issue 15): it tries to lead again after a pause.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                if (TransientFaults.IsTransient(ex, stoppingToken))
                {
                    store.Availability.Failed("projection daemon", TransientFaults.Describe(ex));
                }

                Log.LeaderLost(logger, Log.Describe(ex));
            }

            await Delay(_options.LeaderRetry, stoppingToken);
        }
    }

    private async Task LeadAsync(CancellationToken ct)
    {
        await using var connection = await store.DataSource.OpenConnectionAsync(ct);
        await using (var tryLock = new NpgsqlCommand(LeaderLockSql, connection))
        {
            if (!(bool)(await tryLock.ExecuteScalarAsync(ct))!)
            {
                Log.NotLeader(logger, _options.LeaderRetry);
                return;
            }
        }

        try
        {
            _isLeader = true;
            Log.LeaderAcquired(logger);
            using var leadership = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var runners = _projections.Select(p => RunAsync(p, leadership.Token)).ToArray();
            try
            {
                while (true)
                {
                    await Task.Delay(_options.LeaderRetry, ct);
                    await using var ping = new NpgsqlCommand("select 1", connection);
                    await ping.ExecuteNonQueryAsync(ct);
                }
            }
            finally
            {
                await leadership.CancelAsync();
                await Task.WhenAll(runners);
            }
        }
        finally
        {
            _isLeader = false;
            try
            {
                // The connection goes back to the pool: it must not keep the lock.
                await using var unlock = new NpgsqlCommand(LeaderUnlockSql, connection);
                await unlock.ExecuteNonQueryAsync(CancellationToken.None);
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException or InvalidOperationException)
            {
                // A broken session released the lock with itself (and is not returned to the pool).
            }
        }
    }

    /// <summary>Applies pages of one projection until cancelled; never throws but for cancellation.</summary>
    private async Task RunAsync(IAsyncProjection projection, CancellationToken ct)
    {
        var feed = new EventFeed(store);
        var position = -1L;
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (position < 0)
                {
                    position = await Checkpoints.LoadAsync(store.DataSource, projection.Name, ct);
                }

                var applied = await StepAsync(feed, projection, position, _options.PageSize, ct);
                Interlocked.Increment(ref _steps);
                if (applied is null)
                {
                    await WaitAsync(position, ct);
                    continue;
                }

                var caughtUp = applied.Value - position < (projection is IRangeReplay ? _options.RangeSize : _options.PageSize);
                position = applied.Value;
                failures = 0;
                if (caughtUp && _options.GatherDelay > TimeSpan.Zero)
                {
                    // Caught up: let events gather for a moment instead of applying a few at a time, each step
                    // paying a transaction and a range statement (this bounds the added lag to the delay).
                    await Task.Delay(_options.GatherDelay, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (PostgresException ex) when (ex.SqlState == Checkpoints.Moved)
            {
                Log.CheckpointMoved(logger, projection.Name);
                position = -1;
            }
            catch (PostgresException ex) when (ex.SqlState == Checkpoints.Paused)
            {
                Log.ProjectionPaused(logger, projection.Name);
                position = -1;
                await Delay(_options.LeaderRetry, ct);
            }
#pragma warning disable CA1031 // The daemon must outlive any failure of a page: it logs, records and retries.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                if (TransientFaults.IsTransient(ex, ct))
                {
                    store.Availability.Failed("projection " + projection.Name, TransientFaults.Describe(ex));
                }

                failures++;
                var delay = TimeSpan.FromTicks(Math.Min(
                    _options.MaxErrorBackoff.Ticks,
                    TimeSpan.FromMilliseconds(200).Ticks << Math.Min(failures - 1, 20)));
                Log.PageFailed(logger, projection.Name, position, Log.Describe(ex), delay);
                await TryRecordErrorAsync(projection.Name, Log.Describe(ex), ct);
                position = -1;
                await Delay(delay, ct);
            }
        }
    }

    /// <summary>Reads and applies one page after <paramref name="position"/>; null when there was nothing to apply.</summary>
    private async Task<long?> StepAsync(EventFeed feed, IAsyncProjection projection, long position, int pageSize, CancellationToken ct)
    {
        if (projection is IRangeReplay replay)
        {
            return await StepInDatabaseAsync(feed, projection.Name, replay, position, ct);
        }

        var page = await feed.ReadNextAsync(position, pageSize, ct);
        if (page.Count == 0)
        {
            return null;
        }

        await using (var connection = await store.DataSource.OpenConnectionAsync(ct))
        {
            await Checkpoints.ApplyPageAsync(connection, projection, position, page, ct);
        }

        Log.PageApplied(logger, projection.Name, page.Count, page[^1].Sequence);
        return page[^1].Sequence;
    }

    /// <summary>
    /// One step of a projection that replays inside the database: only the positions cross the wire, and the
    /// projection reads the settled range itself (the rebuild's statements), so the daemon's cost per event is the
    /// database's alone. The checkpoint moves in the same transaction.
    /// </summary>
    private async Task<long?> StepInDatabaseAsync(EventFeed feed, string name, IRangeReplay replay, long position, CancellationToken ct)
    {
        var upTo = await feed.ReadNextSettledAsync(position, Math.Max(1, _options.RangeSize), ct);
        if (upTo <= position)
        {
            return null;
        }

        await using (var connection = await store.DataSource.OpenConnectionAsync(ct))
        await using (var batch = new NpgsqlBatch(connection))
        {
            // JIT off for this transaction: the planner's row estimates for the range CTEs are far too high, and
            // compiling them would cost more than running them.
            batch.BatchCommands.Add(TransactionSetting.NoJit());
            batch.BatchCommands.Add(Checkpoints.AdvanceCommand(name, position, upTo));
            replay.AddRange(batch, position, upTo);
            await batch.ExecuteNonQueryAsync(ct);
        }

        Log.RangeApplied(logger, name, upTo - position, upTo);
        return upTo;
    }

    private async Task WaitAsync(long position, CancellationToken ct)
    {
        // Visible events beyond us but an empty page: the feed is proving a gap dead; ask again soon.
        if (await Checkpoints.HighWaterAsync(store.DataSource, ct) > position)
        {
            await Task.Delay(GapRetry, ct);
        }
        else
        {
            await notifications.WaitAsync(_options.PollInterval, ct);
        }
    }

    /// <summary>
    /// Applies pages of one projection until it has caught up with every visible event (tests and tools; the
    /// leader lock is not taken, the checkpoint guard still is). Failures propagate.
    /// </summary>
    internal async Task<long> CatchUpAsync(IAsyncProjection projection, int? pageSize = null, CancellationToken ct = default)
    {
        var feed = new EventFeed(store);
        var position = await Checkpoints.LoadAsync(store.DataSource, projection.Name, ct);
        while (true)
        {
            var applied = await StepAsync(feed, projection, position, pageSize ?? _options.PageSize, ct);
            if (applied is not null)
            {
                position = applied.Value;
                continue;
            }

            if (await Checkpoints.HighWaterAsync(store.DataSource, ct) <= position)
            {
                return position;
            }

            await Task.Delay(GapRetry, ct);
        }
    }

    private async Task TryRecordErrorAsync(string name, string error, CancellationToken ct)
    {
        try
        {
            await Checkpoints.RecordErrorAsync(store.DataSource, name, error, ct);
        }
        catch (Exception ex) when (ex is NpgsqlException or IOException or TimeoutException)
        {
            // The database is what failed; the log line above is the record.
        }
    }

    private static Task Delay(TimeSpan delay, CancellationToken ct) =>
        Task.Delay(delay, ct).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
}
