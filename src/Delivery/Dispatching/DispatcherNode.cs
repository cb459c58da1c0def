using System.Runtime.CompilerServices;

namespace Monal.Push.Delivery.Dispatching;

// This process's identity in push_queue.claimed_by, and the hand-over between the inline projection (which claims
// pushes that are due now in the append transaction) and the dispatcher (which takes them from memory once the
// append has committed). A new id per process: a restarted process never mistakes its predecessor's claims for its
// own, so those are taken over only once their lease has passed.
internal sealed class DispatcherNode
{
    // Keyed by the list of events the store hands to both IInlineProjection.Project and EventStore.Committed; a
    // batch that rolled back leaves an entry that goes away with its list.
    private readonly ConditionalWeakTable<object, HashSet<Guid>> _fastClaims = [];
    private volatile bool _accepting;

    public string Id { get; } = Environment.MachineName.ToLowerInvariant() + "/" + Guid.CreateVersion7().ToString("N")[^12..];

    // True while a running dispatcher takes pushes from memory; otherwise the projection leaves rows unclaimed.
    public bool Accepting => _accepting;

    public void StartAccepting() => _accepting = true;

    public void StopAccepting() => _accepting = false;

    public void NoteFastClaims(object batch, HashSet<Guid> pushIds) => _fastClaims.AddOrUpdate(batch, pushIds);

    public HashSet<Guid>? TakeFastClaims(object batch) =>
        _fastClaims.TryGetValue(batch, out var ids) && _fastClaims.Remove(batch) ? ids : null;
}
