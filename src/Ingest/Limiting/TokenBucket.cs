namespace Monal.Push.Ingest.Limiting;

/// <summary>
/// A token bucket on the caller's clock (a <see cref="TimeProvider"/>, so tests move time by hand): it holds up to
/// <c>capacity</c> tokens, gains <c>perSecond</c> of them every second, and each taking spends one. Not thread-safe:
/// the owner locks it.
/// </summary>
internal sealed class TokenBucket
{
    private readonly double _capacity;
    private readonly double _perSecond;
    private double _tokens;
    private DateTimeOffset _at;

    public TokenBucket(double capacity, double perSecond, DateTimeOffset now)
    {
        _capacity = capacity;
        _perSecond = perSecond;
        _tokens = capacity;
        _at = now;
    }

    /// <summary>Whether the bucket is full at <paramref name="now"/> (it then holds nothing worth remembering).</summary>
    public bool IsFull(DateTimeOffset now) => Refill(now) >= _capacity;

    /// <summary>Takes one token if there is one.</summary>
    public bool TryTake(DateTimeOffset now)
    {
        _tokens = Refill(now);
        _at = now > _at ? now : _at;
        if (_tokens < 1)
        {
            return false;
        }

        _tokens -= 1;
        return true;
    }

    private double Refill(DateTimeOffset now)
    {
        var elapsed = (now - _at).TotalSeconds;
        return elapsed <= 0 ? _tokens : Math.Min(_capacity, _tokens + (elapsed * _perSecond));
    }
}
