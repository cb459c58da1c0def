namespace Monal.Push.Delivery.Dispatching;

/// <summary>
/// This process's identity in push_queue.claimed_by, and the hand-over from the inline projection (which claims the
/// pushes that are due now in their append transaction) to the dispatcher (which takes them from memory once that
/// append has committed): <see cref="DeliveryQueueProjection"/> returns an <c>AfterCommit</c> that calls
/// <see cref="HandOver"/>, which the store runs after the commit and before the publisher is answered. A new id per
/// process: a restarted process never mistakes its predecessor's claims for its own, so those are taken over only
/// once their lease has passed.
/// </summary>
internal sealed class DispatcherNode
{
    private volatile bool _accepting;
    private volatile Action<IReadOnlyList<QueuedPush>>? _receiver;

    public string Id { get; } = Environment.MachineName.ToLowerInvariant() + "/" + Guid.CreateVersion7().ToString("N")[^12..];

    /// <summary>True while a running dispatcher takes pushes from memory; otherwise the projection leaves rows unclaimed.</summary>
    public bool Accepting => _accepting;

    /// <summary>Routes committed claims to <paramref name="receiver"/> (the dispatcher) until <see cref="Detach"/>.</summary>
    public void Attach(Action<IReadOnlyList<QueuedPush>> receiver) => _receiver = receiver;

    /// <summary>Claims committed from now on are not taken from memory (the poller or the lease takes them).</summary>
    public void Detach() => _receiver = null;

    public void StartAccepting() => _accepting = true;

    public void StopAccepting() => _accepting = false;

    /// <summary>Called once the batch that claimed <paramref name="claimed"/> has committed; quick, never throws.</summary>
    public void HandOver(IReadOnlyList<QueuedPush> claimed) => _receiver?.Invoke(claimed);
}
