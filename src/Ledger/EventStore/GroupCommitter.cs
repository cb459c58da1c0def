using System.Diagnostics;
using System.Threading.Channels;

namespace Monal.Push.Ledger.EventStore;

/// <summary>
/// Group commit: appends queue here and a few writers each take whatever has queued while their previous batch
/// was committing, so under load many appends share one transaction and one fsync, and when idle an append
/// commits alone at once. A caller's task completes only after its batch committed.
/// </summary>
internal sealed class GroupCommitter : IAsyncDisposable
{
    private readonly EventStore _store;
    private readonly int _maxBatch;
    private readonly Channel<PendingAppend> _queue;
    private readonly Task[] _writers;

    public GroupCommitter(EventStore store, int maxBatch, int writers)
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
        for (var i = 0; i < writers; i++)
        {
            _writers[i] = Task.Run(WriteLoopAsync);
        }
    }

    public async Task<AppendResult> EnqueueAsync(PendingAppend append, CancellationToken ct)
    {
        await _queue.Writer.WriteAsync(append, ct);
        return await append.Completion.Task;
    }

    private async Task WriteLoopAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<PendingAppend>(_maxBatch);
        var carry = new Queue<PendingAppend>();
        var streams = new HashSet<Guid>();
        while (carry.Count > 0 || await reader.WaitToReadAsync())
        {
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
                    LedgerMetrics.AppendWait.Record(Stopwatch.GetElapsedTime(p.QueuedAt, taken).TotalSeconds);
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
        _queue.Writer.TryComplete();
        await Task.WhenAll(_writers);
    }
}
