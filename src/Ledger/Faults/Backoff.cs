namespace Monal.Push.Ledger.Faults;

/// <summary>
/// Exponential backoff with jitter for one loop (not thread-safe): each failure doubles the ceiling up to
/// <paramref name="max"/>, and the delay is drawn from the upper half below it, so processes that lost the same
/// server do not come back in step. <see cref="Reset"/> after a success.
/// </summary>
public sealed class Backoff(TimeSpan initial, TimeSpan max)
{
    private int _failures;

    /// <summary>200 ms doubling up to 10 s: a fast restart is noticed within a second, a long outage costs little.</summary>
    public static Backoff ForDatabase() => new(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10));

    /// <summary>Failures since the last reset.</summary>
    public int Failures => _failures;

    /// <summary>The delay before the next attempt.</summary>
    public TimeSpan Next()
    {
        var ceiling = Math.Min(max.Ticks, initial.Ticks << Math.Min(_failures, 20));
        _failures++;
        var half = ceiling / 2;
        return TimeSpan.FromTicks(half + Random.Shared.NextInt64(0, Math.Max(1, ceiling - half)));
    }

    /// <summary>The loop succeeded: the next failure starts small again.</summary>
    public void Reset() => _failures = 0;
}
