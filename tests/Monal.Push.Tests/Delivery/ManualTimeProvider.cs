namespace Monal.Push.Tests.Delivery;

// A clock that only moves when told (Microsoft.Extensions.TimeProvider.Testing is not available here).
// Timers are not faked: the code under test uses this clock only for timestamps.
public sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public ManualTimeProvider()
        : this(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero))
    {
    }

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);

    public void SetUtcNow(DateTimeOffset now) => Interlocked.Exchange(ref _ticks, now.UtcTicks);
}
