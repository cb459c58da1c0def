namespace Monal.Push.Ingest.Limiting;

/// <summary>
/// Tells a queue that stands from a burst, the way CoDel does for packets: a publish's time in the pipeline (from
/// admission to its answer) is measured, and the queue stands when even the quickest publish answered during a whole
/// interval took longer than the target. A burst drains within an interval and is never refused; a rate above what
/// the ledger commits keeps every publish waiting, and is. An interval in which nothing was answered while publishes
/// were pending counts as standing too (the ledger is stuck). Time is the <see cref="TimeProvider"/>'s monotonic
/// timestamp.
/// </summary>
internal sealed class StandingQueue
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _clock;
    private readonly long _target;
    private readonly long _interval;
    private long _windowEnd;
    private long _windowMin = long.MaxValue;
    private volatile bool _standing;

    public StandingQueue(TimeSpan target, TimeSpan interval, TimeProvider clock)
    {
        _clock = clock;
        _target = Ticks(target, clock);
        _interval = Math.Max(1, Ticks(interval, clock));
        _windowEnd = clock.GetTimestamp() + _interval;
    }

    /// <summary>False when the target is zero: the check is off.</summary>
    public bool Enabled => _target > 0;

    /// <summary>Now, in the clock's timestamp units: pass it back to <see cref="Answered"/>.</summary>
    public long Now() => _clock.GetTimestamp();

    /// <summary>Whether publishes are waiting longer than the target, steadily; <paramref name="pending"/> of them are in the pipeline.</summary>
    public bool IsStanding(int pending)
    {
        if (!Enabled)
        {
            return false;
        }

        if (_standing)
        {
            return true;
        }

        // Nothing answered for a whole interval past the window's end while publishes pend: stuck, not idle.
        return pending > 0 && _clock.GetTimestamp() > Volatile.Read(ref _windowEnd) + _interval;
    }

    /// <summary>A publish admitted at <paramref name="admittedAt"/> (from <see cref="Now"/>) was answered.</summary>
    public void Answered(long admittedAt)
    {
        if (!Enabled)
        {
            return;
        }

        var now = _clock.GetTimestamp();
        var sojourn = now - admittedAt;
        lock (_gate)
        {
            if (sojourn < _windowMin)
            {
                _windowMin = sojourn;
            }

            if (now >= _windowEnd)
            {
                _standing = _windowMin > _target;
                _windowMin = long.MaxValue;
                Volatile.Write(ref _windowEnd, now + _interval);
            }
        }
    }

    private static long Ticks(TimeSpan span, TimeProvider clock) => (long)(span.TotalSeconds * clock.TimestampFrequency);
}
