namespace Monal.Push.Ledger;

/// <summary>
/// Gathers work that arrives while earlier work runs into shared batches, as group commit does for appends: an item
/// that finds fewer than <c>inFlight</c> batches running starts one of its own at once (so an idle server adds no
/// wait), the others queue and are taken, up to <c>maxBatch</c> at a time, by the next batch to finish. A busy
/// server's lookups or inserts then share a round trip and a transaction instead of taking one each. Nothing runs
/// while nothing is queued, so there is nothing to start or stop. The handler completes each item of its batch; when
/// it throws, <c>fail</c> hears the exception for every item of that batch, and the next batch is tried afresh.
/// </summary>
/// <typeparam name="T">An item that carries its own completion (a TaskCompletionSource).</typeparam>
public sealed class Gatherer<T>
{
    private readonly Lock _gate = new();
    private readonly List<T> _waiting = [];
    private readonly int _maxBatch;
    private readonly int _inFlight;
    private readonly Func<List<T>, Task> _handle;
    private readonly Action<T, Exception> _fail;
    private int _running;
    private long _batches;

    /// <summary>Batches of at most <paramref name="maxBatch"/> items, at most <paramref name="inFlight"/> at once.</summary>
    public Gatherer(int maxBatch, int inFlight, Func<List<T>, Task> handle, Action<T, Exception> fail)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(inFlight, 1);
        ArgumentNullException.ThrowIfNull(handle);
        ArgumentNullException.ThrowIfNull(fail);
        _maxBatch = maxBatch;
        _inFlight = inFlight;
        _handle = handle;
        _fail = fail;
    }

    /// <summary>Batches handled so far.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Queues <paramref name="item"/>, or starts a batch with it when fewer than the limit are running.</summary>
    public void Add(T item)
    {
        lock (_gate)
        {
            if (_running >= _inFlight)
            {
                _waiting.Add(item);
                return;
            }

            _running++;
        }

        _ = RunAsync([item]);
    }

    private async Task RunAsync(List<T> batch)
    {
        while (true)
        {
            Interlocked.Increment(ref _batches);
            try
            {
                await _handle(batch);
            }
#pragma warning disable CA1031 // The loop outlives any failure: its items hear it, the next batch is tried afresh.
            catch (Exception e)
#pragma warning restore CA1031
            {
                foreach (var item in batch)
                {
                    _fail(item, e);
                }
            }

            lock (_gate)
            {
                if (_waiting.Count == 0)
                {
                    _running--;
                    return;
                }

                var take = Math.Min(_waiting.Count, _maxBatch);
                batch = _waiting.GetRange(0, take);
                _waiting.RemoveRange(0, take);
            }
        }
    }
}
