using Monal.Push.Ledger.Faults;
using Npgsql;

namespace Monal.Push.Ledger.EventStore;

/// <summary>
/// Reads the global log in position order without skipping an event that commits late and without stalling
/// forever on a position that will never appear (burned by a rolled-back transaction, or deleted).
/// </summary>
/// <remarks>
/// Marten's high-water detector skipped a gap after a timeout before 9.16.1, which could skip a slow transaction's
/// event (what it does now: docs/architecture.md "Why not Marten and Wolverine"). This feed proves a gap dead
/// instead, without a clock. Every append takes its xid before it draws a position (EventStore.Append.cs). So if
/// a read sees position P visible, every position below P was drawn by a transaction whose xid had been assigned
/// before that read, hence below the snapshot xmax taken right after it. Once a later snapshot's xmin passes that
/// xmax, all those transactions have ended, and a position below P that is still invisible never will be.
/// A reader keeps one feed per checkpoint it advances.
/// </remarks>
public sealed class EventFeed(EventStore store)
{
    private long _provenBelow;      // every invisible position below this is proven dead
    private long _pendingBelow;     // a proof in progress covers positions below this...
    private ulong _pendingXmax;     // ...once xmin has passed this xmax

    /// <summary>
    /// The next events after <paramref name="checkpoint"/>, contiguous except for gaps proven dead. An empty page
    /// means nothing new, or a gap still being proven (call again a little later).
    /// </summary>
    public async Task<IReadOnlyList<RecordedEvent>> ReadNextAsync(long checkpoint, int max, CancellationToken ct = default)
    {
        var rows = await store.ReadAllAsync(checkpoint, max, ct);
        var settled = await SettledPrefixAsync(rows.Select(e => e.Sequence).ToArray(), checkpoint, ct);
        return settled == rows.Count ? rows : rows.Take(settled).ToArray();
    }

    /// <summary>
    /// How far the log is settled after <paramref name="checkpoint"/>, looking at up to <paramref name="max"/>
    /// positions without reading their events: the highest position P such that every position in
    /// (<paramref name="checkpoint"/>, P] is visible or proven dead, or the checkpoint itself when the next one is not
    /// settled yet. Projections that replay inside the database read the range themselves.
    /// </summary>
    public async Task<long> ReadNextSettledAsync(long checkpoint, int max, CancellationToken ct = default)
    {
        var positions = await store.ReadPositionsAsync(checkpoint, max, ct);
        var settled = await SettledPrefixAsync(positions, checkpoint, ct);
        return settled == 0 ? checkpoint : positions[settled - 1];
    }

    /// <summary>How many of the visible positions, in order after the checkpoint, can be handed out without a skip.</summary>
    private async Task<int> SettledPrefixAsync(long[] positions, long checkpoint, CancellationToken ct)
    {
        if (positions.Length == 0)
        {
            return 0;
        }

        var expected = checkpoint + 1;
        for (var i = 0; i < positions.Length; i++)
        {
            var position = positions[i];
            if (position != expected && position > _provenBelow)
            {
                if (!await ProveBelowAsync(positions[^1], ct) || position > _provenBelow)
                {
                    return i;
                }
            }

            expected = position + 1;
        }

        return positions.Length;
    }

    private async Task<bool> ProveBelowAsync(long highestSeen, CancellationToken ct)
    {
        if (_pendingBelow > 0)
        {
            var xmin = await SnapshotAsync("pg_snapshot_xmin", ct);
            if (xmin >= _pendingXmax)
            {
                _provenBelow = Math.Max(_provenBelow, _pendingBelow);
                _pendingBelow = 0;
                return true;
            }

            return false;
        }

        _pendingBelow = highestSeen;
        _pendingXmax = await SnapshotAsync("pg_snapshot_xmax", ct);
        return false;
    }

    private async Task<ulong> SnapshotAsync(string function, CancellationToken ct)
    {
        await using var cmd = store.DataSource.CreateCommand($"select {function}(pg_current_snapshot())::text");
        return ulong.Parse((string)(await cmd.ExecuteScalarAsync(ct))!, System.Globalization.CultureInfo.InvariantCulture);
    }
}

/// <summary>
/// Wakes readers when events are appended: LISTEN on <see cref="EventStore.NotifyChannel"/> over one connection,
/// with a polling fallback so a lost notification or a dropped connection only delays a reader, never stalls it.
/// </summary>
public sealed class EventNotifications(NpgsqlDataSource dataSource) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _listener;

    /// <summary>Waits until an append is notified or <paramref name="poll"/> elapses, whichever comes first.</summary>
    public async Task WaitAsync(TimeSpan poll, CancellationToken ct)
    {
        lock (_gate)
        {
            _listener ??= Task.Run(() => ListenAsync(_stop.Token), CancellationToken.None);
        }

        Task signal;
        lock (_gate)
        {
            signal = _signal.Task;
        }

        try
        {
            await signal.WaitAsync(poll, ct);
        }
        catch (TimeoutException)
        {
            // Polling fallback.
        }
    }

    private void Signal()
    {
        TaskCompletionSource old;
        lock (_gate)
        {
            old = _signal;
            _signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        old.TrySetResult();
    }

    private async Task ListenAsync(CancellationToken ct)
    {
        var backoff = Backoff.ForDatabase();
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(ct);
                connection.Notification += (_, _) => Signal();
                await using (var listen = new NpgsqlCommand($"listen {EventStore.NotifyChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(ct);
                }

                backoff.Reset();
                Signal(); // anything appended while we were not listening
                while (!ct.IsCancellationRequested)
                {
                    await connection.WaitAsync(ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The listener outlives any failure (issue 15); readers poll meanwhile.
            catch (Exception)
#pragma warning restore CA1031
            {
                Signal(); // readers look now rather than after their poll interval
                await Task.Delay(backoff.Next(), ct).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    /// <summary>Stops listening.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_listener is not null)
        {
            await _listener.ContinueWith(_ => { }, TaskScheduler.Default);
        }

        _stop.Dispose();
    }
}
