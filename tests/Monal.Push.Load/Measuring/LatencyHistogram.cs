using HdrHistogram;

namespace Monal.Push.Load.Measuring;

/// <summary>
/// Latencies in microseconds, recorded into HdrHistogram's <see cref="LongHistogram"/> (any recorded value known to
/// within one part in 10^digits, O(1) recording without allocation). This wrapper adds what the load generator needs
/// on top: values above the highest trackable one are counted as that value and in <see cref="Clamped"/> (HdrHistogram
/// would throw), and the exact minimum and maximum. Not thread-safe: one writer (the reply reader) per instance.
/// </summary>
internal sealed class LatencyHistogram
{
    private readonly LongHistogram _histogram;

    /// <param name="highestTrackableValue">Larger values are counted as this value (and in <see cref="Clamped"/>).</param>
    /// <param name="significantDigits">1 to 5 decimal digits of precision.</param>
    public LatencyHistogram(long highestTrackableValue = 3_600_000_000, int significantDigits = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(highestTrackableValue, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(significantDigits, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(significantDigits, 5);
        HighestTrackableValue = highestTrackableValue;
        _histogram = new LongHistogram(highestTrackableValue, significantDigits);
    }

    public long HighestTrackableValue { get; }

    public long TotalCount => _histogram.TotalCount;

    /// <summary>Recorded values above <see cref="HighestTrackableValue"/>.</summary>
    public long Clamped { get; private set; }

    public long Min { get; private set; } = long.MaxValue;

    public long Max { get; private set; }

    public double Mean => TotalCount == 0 ? 0 : _histogram.GetMean();

    public void Record(long value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        if (value > HighestTrackableValue)
        {
            Clamped++;
            value = HighestTrackableValue;
        }

        _histogram.RecordValue(value);
        Min = Math.Min(Min, value);
        Max = Math.Max(Max, value);
    }

    /// <summary>The value at a percentile (0..100), HdrHistogram's getValueAtPercentile capped at the exact maximum; 0 when empty.</summary>
    public long ValueAtPercentile(double percentile) =>
        TotalCount == 0 ? 0 : Math.Min(_histogram.GetValueAtPercentile(Math.Clamp(percentile, 0, 100)), Max);

    /// <summary>Adds another histogram of the same shape.</summary>
    public void Add(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.HighestTrackableValue != HighestTrackableValue)
        {
            throw new ArgumentException("Histograms of different shapes.", nameof(other));
        }

        _histogram.Add(other._histogram);
        Clamped += other.Clamped;
        if (other.TotalCount > 0)
        {
            Min = Math.Min(Min, other.Min);
            Max = Math.Max(Max, other.Max);
        }
    }

    /// <summary>The width of the range of values counted together with <paramref name="value"/>.</summary>
    public long SizeOfEquivalentRange(long value) => _histogram.SizeOfEquivalentValueRange(value);

    public long LowestEquivalentValue(long value) => _histogram.LowestEquivalentValue(value);

    public long HighestEquivalentValue(long value) => _histogram.HighestEquivalentValue(value);
}
