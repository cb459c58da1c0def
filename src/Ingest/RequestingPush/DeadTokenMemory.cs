using System.Collections.Concurrent;

namespace Monal.Push.Ingest.RequestingPush;

/// <summary>
/// The stateless devices this process has just found to be dead tokens (the devices projection refused to create them:
/// Apple declared the token dead and the device was erased, migrations/0007). A publish to one is answered
/// <c>item-not-found</c> from here for <see cref="KeepFor"/>, without taking the domain's new-device quota, making a
/// data key or failing an append in a shared group commit (each refusal cost its batch a retry in halves). A server
/// that ignores <c>item-not-found</c>, or publishes to dead tokens on purpose, kept the ledger committing one append
/// at a time (docs/benchmarks.md, "Issue 16, ninth pass"). Holds device ids only (keyed hashes, as dead_tokens does),
/// at most <see cref="MaxEntries"/>; forgetting one only means its next publish asks the database again. A dead token
/// does not come back (a reinstalled app gets a new token), so the answer cannot go stale while it is remembered.
/// </summary>
internal sealed class DeadTokenMemory(TimeProvider clock)
{
    /// <summary>How long a dead token is answered from memory.</summary>
    internal static readonly TimeSpan KeepFor = TimeSpan.FromMinutes(10);

    /// <summary>Most ids remembered (about 0.1 KB each).</summary>
    internal const int MaxEntries = 50_000;

    private readonly ConcurrentDictionary<Guid, long> _until = new();

    public bool IsDead(Guid deviceId)
    {
        if (!_until.TryGetValue(deviceId, out var until))
        {
            return false;
        }

        if (clock.GetUtcNow().UtcTicks < until)
        {
            return true;
        }

        _until.TryRemove(KeyValuePair.Create(deviceId, until));
        return false;
    }

    public void Remember(Guid deviceId)
    {
        var now = clock.GetUtcNow().UtcTicks;
        if (_until.Count >= MaxEntries)
        {
            foreach (var (id, until) in _until)
            {
                if (until <= now)
                {
                    _until.TryRemove(KeyValuePair.Create(id, until));
                }
            }

            if (_until.Count >= MaxEntries)
            {
                _until.Clear();
            }
        }

        _until[deviceId] = now + KeepFor.Ticks;
    }
}
