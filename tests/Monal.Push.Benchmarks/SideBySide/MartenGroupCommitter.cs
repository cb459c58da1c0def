using System.Threading.Channels;
using Marten;
using Monal.Push.Ledger.Events;

namespace Monal.Push.Benchmarks.SideBySide;

/// <summary>
/// The smallest group commit we could put in front of Marten, for the side-by-side benchmark only: callers queue one
/// event each in a bounded channel; <paramref name="writers"/> loops each take whatever queued while their last
/// session was saving (up to <paramref name="maxBatch"/>), append it all to one lightweight session, in stream id
/// order (so two sessions lock <c>mt_streams</c> rows in the same order and never deadlock), and complete every
/// caller once <c>SaveChangesAsync</c> has committed.
/// <paramref name="sharded"/> gives each writer its own queue and sends a stream's events always to the same one, so
/// two sessions of this process never append to one stream at once (see <see cref="CommitAsync"/>); without it all
/// writers share one queue, as our store's do.
/// </summary>
internal sealed class MartenGroupCommitter : IAsyncDisposable
{
    private readonly IDocumentStore _store;
    private readonly int _maxBatch;
    private readonly Channel<Pending>[] _queues;
    private readonly Task[] _loops;
    private long _batches;
    private long _failedBatches;

    public MartenGroupCommitter(IDocumentStore store, int writers, int maxBatch, bool sharded)
    {
        _store = store;
        _maxBatch = maxBatch;
        _queues = [.. Enumerable.Range(0, sharded ? writers : 1).Select(_ =>
            Channel.CreateBounded<Pending>(new BoundedChannelOptions(maxBatch * writers * 4) { SingleWriter = false }))];
        _loops = [.. Enumerable.Range(0, writers).Select(i => Task.Run(() => LoopAsync(_queues[i % _queues.Length].Reader)))];
    }

    /// <summary>Transactions committed so far.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Failed attempts to commit a shared batch (each followed by a retry).</summary>
    public long FailedBatches => Interlocked.Read(ref _failedBatches);

    /// <summary>Completes once the event is committed.</summary>
    public async Task AppendAsync(Guid stream, PushRequested e, CancellationToken ct = default)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var queue = _queues[(int)((uint)stream.GetHashCode() % (uint)_queues.Length)];
        await queue.Writer.WriteAsync(new Pending(stream, e, done), ct);
        await done.Task;
    }

    private async Task LoopAsync(ChannelReader<Pending> reader)
    {
        var batch = new List<Pending>(_maxBatch);
        while (await reader.WaitToReadAsync())
        {
            batch.Clear();
            while (batch.Count < _maxBatch && reader.TryRead(out var next))
            {
                batch.Add(next);
            }

            if (batch.Count == 0)
            {
                continue;
            }

            batch.Sort((a, b) => a.Stream.CompareTo(b.Stream));
            await CommitAsync(batch);
        }
    }

    private async Task CommitAsync(List<Pending> batch)
    {
        // Marten 9.62's mt_quick_append_events reads the stream's version with a plain SELECT (no FOR UPDATE), so two
        // sessions appending to one stream at once both take the next version, and the later insert fails on
        // pk_mt_events_stream_and_version (EventStreamUnexpectedMaxEventIdException) although no version was
        // expected: a race, not a caller's fault, so the whole batch is tried again (up to 3 times) before each event
        // is tried alone, as our store does to find a culprit.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await SaveAsync(batch);
                batch.ForEach(p => p.Done.SetResult());
                return;
            }
            catch (Exception ex) when (attempt < 3)
            {
                if (Interlocked.Increment(ref _failedBatches) == 1)
                {
                    Console.Error.WriteLine($"first failed Marten batch ({batch.Count} events): {ex.GetType().Name}");
                }
            }
            catch (Exception)
            {
                Interlocked.Increment(ref _failedBatches);
                break;
            }
        }

        foreach (var p in batch)
        {
            try
            {
                await SaveAsync([p]);
                p.Done.SetResult();
            }
            catch (Exception alone)
            {
                p.Done.SetException(alone);
            }
        }
    }

    private async Task SaveAsync(List<Pending> batch)
    {
        await using var session = _store.LightweightSession();
        foreach (var stream in batch.GroupBy(p => p.Stream))
        {
            session.Events.Append(stream.Key, [.. stream.Select(p => (object)p.Event)]);
        }

        await session.SaveChangesAsync();
        Interlocked.Increment(ref _batches);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var queue in _queues)
        {
            queue.Writer.Complete();
        }

        await Task.WhenAll(_loops);
    }

    private readonly record struct Pending(Guid Stream, PushRequested Event, TaskCompletionSource Done);
}
