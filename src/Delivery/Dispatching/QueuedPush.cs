namespace Monal.Push.Delivery.Dispatching;

/// <summary>
/// A push this node has claimed, waiting in memory or being sent. ClaimedUntil only ever takes a value that the
/// database holds for a row claimed by this node, so "ClaimedUntil is ahead" means "nobody else may send it".
/// </summary>
internal sealed class QueuedPush(
    Guid pushId, Guid deviceId, DateTimeOffset dueAt, DateTimeOffset expiresAt, int attempts, int? lastStatus,
    DateTimeOffset claimedUntil) : IDisposable
{
    private readonly Lock _gate = new();
    private DateTimeOffset _claimedUntil = claimedUntil;
    private CancellationTokenSource? _lease;

    public Guid PushId { get; } = pushId;

    public Guid DeviceId { get; } = deviceId;

    // RequestedAt, or NotBefore for a coalesced push: latency is measured from here.
    public DateTimeOffset DueAt { get; } = dueAt;

    public DateTimeOffset ExpiresAt { get; } = expiresAt;

    public int Attempts { get; } = attempts;

    public int? LastStatus { get; } = lastStatus;

    public DateTimeOffset ClaimedUntil
    {
        get
        {
            lock (_gate)
            {
                return _claimedUntil;
            }
        }
    }

    // A renewal (or a second claim of the same row) moved the lease; a send in progress gets the new deadline.
    public void Extend(DateTimeOffset until, TimeSpan margin, TimeProvider clock)
    {
        lock (_gate)
        {
            if (until <= _claimedUntil)
            {
                return;
            }

            _claimedUntil = until;
            _lease?.CancelAfter(Remaining(until - margin, clock));
        }
    }

    // A token cancelled when the claim is about to lapse, so a send never outlives it; moved by Extend.
    public CancellationTokenSource StartLease(TimeSpan margin, TimeProvider clock)
    {
        lock (_gate)
        {
            _lease = new CancellationTokenSource(Remaining(_claimedUntil - margin, clock), clock);
            return _lease;
        }
    }

    public void EndLease()
    {
        lock (_gate)
        {
            _lease?.Dispose();
            _lease = null;
        }
    }

    public void Dispose() => EndLease();

    private static TimeSpan Remaining(DateTimeOffset deadline, TimeProvider clock)
    {
        var left = deadline - clock.GetUtcNow();
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }
}
