namespace Monal.Push.Ledger.Faults;

/// <summary>
/// What the process has seen of its database lately, for <c>/health/ready</c>: the first transient failure of an
/// outage (which loop, which SQLSTATE or error kind, when) and the last success. One per process (a singleton of AddLedger).
/// </summary>
public sealed class LedgerAvailability(TimeProvider clock)
{
    private readonly Lock _lock = new();
    private (string Loop, string Reason, DateTimeOffset At)? _lastFault;
    private DateTimeOffset? _lastSuccess;
    private long _faults;

    /// <summary>Transient failures seen since the start.</summary>
    public long Faults => Interlocked.Read(ref _faults);

    /// <summary>A loop (or the append path) hit a transient failure.</summary>
    public void Failed(string loop, string reason)
    {
        Interlocked.Increment(ref _faults);
        lock (_lock)
        {
            // Keep the first failure of an outage: that is when it began.
            if (_lastFault is not { } f || (_lastSuccess is { } ok && ok > f.At))
            {
                _lastFault = (loop, reason, clock.GetUtcNow());
            }
        }
    }

    /// <summary>A round trip to the database succeeded.</summary>
    public void Succeeded()
    {
        lock (_lock)
        {
            _lastSuccess = clock.GetUtcNow();
        }
    }

    /// <summary>
    /// Null while the last thing seen was a success (or nothing failed yet); else the first failure seen after it, with
    /// no personal data ("delivery poller: SQLSTATE 57P01 at 12:00:01Z; …").
    /// </summary>
    public string? Degraded()
    {
        lock (_lock)
        {
            if (_lastFault is not { } f || (_lastSuccess is { } ok && ok > f.At))
            {
                return null;
            }

            return $"{f.Loop}: {f.Reason} at {f.At:HH:mm:ss}Z; publishes are answered wait, loops retry with backoff";
        }
    }
}
