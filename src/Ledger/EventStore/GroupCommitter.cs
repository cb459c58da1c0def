using System.Diagnostics;
using System.Threading.Channels;

namespace Monal.Push.Ledger.EventStore;

/// <summary>
/// Group commit: appends queue here and a few writers each take whatever has queued while their previous batch
/// was committing, so under load many appends share one transaction and one fsync, and when idle an append
/// commits alone at once. The writers after the first join in only once <see cref="BacklogForMoreWriters"/> appends
/// wait (docs/benchmarks.md, "Issue 16, thirteenth pass"). A caller's task completes only after its batch committed.
///
/// Deferred appends (<see cref="PendingAppend.Deferred"/>: events nobody waits on promptly, such as a push's outcome)
/// first gather for up to the linger, or until <see cref="DeferredBatch"/> of them have, and then join the queue
/// together, so a writer takes them in one batch: at a moderate rate the outcomes of a few dozen pushes share one
/// transaction instead of each a small one of its own (docs/benchmarks.md, "Issue 16, twelfth pass").
/// </summary>
internal sealed class GroupCommitter : IAsyncDisposable
{
    /// <summary>Deferred appends go on as soon as this many have gathered, whatever the linger.</summary>
    public const int DeferredBatch = 64;

    /// <summary>
    /// The writers after the first take a batch only once this many appends wait: at a moderate rate the first writer
    /// alone commits what gathered during its previous commit, instead of the others each committing one or two.
    /// </summary>
    public const int BacklogForMoreWriters = 8;

    private readonly EventStore _store;
    private readonly int _maxBatch;
    private readonly Channel<PendingAppend> _queue;
    private readonly Task[] _writers;
    private readonly Channel<PendingAppend>? _deferred;
    private readonly TimeSpan _linger;
    private readonly Task? _pump;
    private readonly Wakeup _ripe = new();
    private readonly Wakeup _backlog = new();
    private volatile bool _flushing;
    private volatile bool _closing;

    public GroupCommitter(EventStore store, int maxBatch, int writers, TimeSpan deferredLinger)
    {
        _store = store;
        _maxBatch = maxBatch;
        // Bounded: when the database falls behind, callers wait here instead of filling memory.
        _queue = Channel.CreateBounded<PendingAppend>(new BoundedChannelOptions(maxBatch * writers * 8)
        {
            SingleWriter = false,
            SingleReader = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _writers = new Task[writers];
        _writers[0] = Task.Run(() => WriteLoopAsync(first: true));
        for (var i = 1; i < writers; i++)
        {
            _writers[i] = Task.Run(() => WriteLoopAsync(first: false));
        }

        if (deferredLinger > TimeSpan.Zero)
        {
            _linger = deferredLinger;
            _deferred = Channel.CreateBounded<PendingAppend>(new BoundedChannelOptions(maxBatch * writers * 8)
            {
                SingleWriter = false,
                SingleReader = true,
                FullMode = BoundedChannelFullMode.Wait,
            });
            _pump = Task.Run(PumpDeferredAsync);
        }
    }

    /// <summary>
    /// Queues an append and completes once its batch committed. A deferred one (<see cref="PendingAppend.Deferred"/>)
    /// first waits, with the other deferred appends, for the linger or for a batch of them to gather.
    /// </summary>
    public async Task<AppendResult> EnqueueAsync(PendingAppend append, CancellationToken ct)
    {
        if (append.Deferred && _deferred is not null)
        {
            await _deferred.Writer.WriteAsync(append, ct);
            if (_deferred.Reader.Count >= DeferredBatch)
            {
                _ripe.Set();
            }
        }
        else
        {
            await _queue.Writer.WriteAsync(append, ct);
            SignalBacklog();
        }

        return await append.Completion.Task;
    }

    // Moves the deferred appends to the queue in bursts: after the first of a burst has waited the linger, or once
    // DeferredBatch have gathered, or at once while stopping. Written together, a writer finds them together.
    private async Task PumpDeferredAsync()
    {
        var reader = _deferred!.Reader;
        while (await reader.WaitToReadAsync())
        {
            var ripe = _ripe.Current;
            if (!_flushing && reader.Count < DeferredBatch)
            {
                await Task.WhenAny(ripe, Task.Delay(_linger));
            }

            _ripe.Rearm(ripe);
            while (reader.TryRead(out var append))
            {
                await _queue.Writer.WriteAsync(append);
            }

            SignalBacklog();
        }
    }

    // Wakes the writers after the first once enough appends wait for them.
    private void SignalBacklog()
    {
        if (_writers.Length > 1 && _queue.Reader.Count >= BacklogForMoreWriters)
        {
            _backlog.Set();
        }
    }

    // A writer after the first: waits until BacklogForMoreWriters appends are queued (or the committer closes).
    private async Task WaitForBacklogAsync()
    {
        while (!_closing)
        {
            var signal = _backlog.Current;
            if (signal.IsCompleted)
            {
                // Spent: arm a new one before looking at the queue, so a signal after the look is not missed.
                _backlog.Rearm(signal);
                continue;
            }

            if (_queue.Reader.Count >= BacklogForMoreWriters)
            {
                return;
            }

            await signal;
        }
    }

    // The first writer takes whatever has queued as soon as it is free; the others only once a backlog has formed
    // (BacklogForMoreWriters), which at a moderate rate leaves the first to commit alone and at a high one (or while its
    // commit stalls) lets another commit meanwhile.
    private async Task WriteLoopAsync(bool first)
    {
        var reader = _queue.Reader;
        var batch = new List<PendingAppend>(_maxBatch);
        var carry = new Queue<PendingAppend>();
        var streams = new HashSet<Guid>();
        while (true)
        {
            if (!first && carry.Count == 0)
            {
                await WaitForBacklogAsync();
            }

            if (carry.Count == 0 && !await reader.WaitToReadAsync())
            {
                return;
            }

            batch.Clear();
            streams.Clear();
            var postponed = new List<PendingAppend>();
            while (batch.Count < _maxBatch && (carry.TryDequeue(out var next) || reader.TryRead(out next)))
            {
                // A second append to a stream that expects a version must wait for the next batch: the first one
                // moves the version it is checked against.
                if (!streams.Add(next.StreamId) && !next.Expected.IsAny)
                {
                    postponed.Add(next);
                    continue;
                }

                batch.Add(next);
            }

            foreach (var p in postponed)
            {
                carry.Enqueue(p);
            }

            if (batch.Count > 0)
            {
                var taken = Stopwatch.GetTimestamp();
                foreach (var p in batch)
                {
                    // The wait of appends somebody waits on: a deferred one's linger is by design.
                    if (!p.Deferred)
                    {
                        LedgerMetrics.AppendWait.Record(Stopwatch.GetElapsedTime(p.QueuedAt, taken).TotalSeconds);
                    }
                }

                // Appends are not cancelled half-way: a caller that gave up still gets a committed event.
                try
                {
                    await _store.ExecuteBatchAsync(batch, CancellationToken.None);
                }
#pragma warning disable CA1031 // A writer outlives anything (issue 15): its callers hear the failure, it takes the next batch.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    foreach (var p in batch)
                    {
                        p.Completion.TrySetException(ex);
                    }
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_deferred is not null)
        {
            // Stopping: what is deferred goes on at once, before the queue closes behind it.
            _flushing = true;
            _deferred.Writer.TryComplete();
            _ripe.Set();
            await _pump!;
        }

        _closing = true;
        _queue.Writer.TryComplete();
        _backlog.Set();
        await Task.WhenAll(_writers);
    }

    /// <summary>
    /// A wake-up that any thread may set, any number of times, and its waiters re-arm once they have seen it set
    /// (the deferred appends' "a batch has gathered", the other writers' "a backlog waits").
    /// </summary>
    private sealed class Wakeup
    {
        private TaskCompletionSource _current = New();

        /// <summary>Completes once the wake-up is set after the last re-arming.</summary>
        public Task Current => Volatile.Read(ref _current).Task;

        public void Set() => Volatile.Read(ref _current).TrySetResult();

        /// <summary>Arms a new wake-up in place of <paramref name="seen"/> (unless another waiter already did).</summary>
        public void Rearm(Task seen)
        {
            var current = Volatile.Read(ref _current);
            if (current.Task == seen)
            {
                Interlocked.CompareExchange(ref _current, New(), current);
            }
        }

        private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
