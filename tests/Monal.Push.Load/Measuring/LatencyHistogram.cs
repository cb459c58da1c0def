namespace Monal.Push.Load.Measuring;

/// <summary>
/// A log-linear histogram of non-negative integer values (here: microseconds), the layout of Gil Tene's HdrHistogram
/// written out by hand: values below <c>2 × 10^digits</c> are counted exactly, and above that every power-of-two bucket is
/// split into the same number of linear sub-buckets, so any recorded value is known to within one part in
/// <c>10^digits</c>. Recording is O(1) without allocation. Not thread-safe: one writer (the reply reader) per instance.
/// </summary>
internal sealed class LatencyHistogram
{
    private readonly int _subBucketHalfCountMagnitude;
    private readonly int _subBucketHalfCount;
    private readonly long _subBucketMask;
    private readonly int _leadingZeroCountBase;
    private readonly long[] _counts;
    private long _sum;

    /// <param name="highestTrackableValue">Larger values are counted as this value (and in <see cref="Clamped"/>).</param>
    /// <param name="significantDigits">1 to 5 decimal digits of precision.</param>
    public LatencyHistogram(long highestTrackableValue = 3_600_000_000, int significantDigits = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(highestTrackableValue, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(significantDigits, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(significantDigits, 5);
        HighestTrackableValue = highestTrackableValue;
        var largestExact = 2 * (long)Math.Pow(10, significantDigits);
        var subBucketCountMagnitude = (int)Math.Ceiling(Math.Log2(largestExact));
        _subBucketHalfCountMagnitude = subBucketCountMagnitude - 1;
        var subBucketCount = 1 << subBucketCountMagnitude;
        _subBucketHalfCount = subBucketCount / 2;
        _subBucketMask = subBucketCount - 1;
        _leadingZeroCountBase = 64 - _subBucketHalfCountMagnitude - 1;

        // Enough power-of-two buckets that the last one reaches the highest trackable value.
        var bucketCount = 1;
        var smallestUntrackable = (long)subBucketCount;
        while (smallestUntrackable <= highestTrackableValue)
        {
            if (smallestUntrackable > long.MaxValue / 2)
            {
                bucketCount++;
                break;
            }

            smallestUntrackable <<= 1;
            bucketCount++;
        }

        _counts = new long[(bucketCount + 1) * _subBucketHalfCount];
    }

    public long HighestTrackableValue { get; }

    public long TotalCount { get; private set; }

    /// <summary>Recorded values above <see cref="HighestTrackableValue"/>.</summary>
    public long Clamped { get; private set; }

    public long Min { get; private set; } = long.MaxValue;

    public long Max { get; private set; }

    public double Mean => TotalCount == 0 ? 0 : (double)_sum / TotalCount;

    public void Record(long value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        if (value > HighestTrackableValue)
        {
            Clamped++;
            value = HighestTrackableValue;
        }

        _counts[IndexOf(value)]++;
        TotalCount++;
        _sum += value;
        Min = Math.Min(Min, value);
        Max = Math.Max(Max, value);
    }

    /// <summary>
    /// The value at a percentile (0..100): the highest value equivalent to the smallest recorded value that at least
    /// that share of all values is less than or equal to (HdrHistogram's getValueAtPercentile). 0 when empty.
    /// </summary>
    public long ValueAtPercentile(double percentile)
    {
        if (TotalCount == 0)
        {
            return 0;
        }

        var p = Math.Clamp(percentile, 0, 100);
        // Nearest rank; the tiny shrink keeps 99.9 % of 1,000 at rank 999 despite binary floating point (999.0000000000001).
        var target = Math.Max(1, (long)Math.Ceiling(p / 100 * TotalCount * (1 - 1e-12)));
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= target)
            {
                return Math.Min(HighestEquivalentValue(ValueAt(i)), Max);
            }
        }

        return Max;
    }

    /// <summary>Adds another histogram of the same shape.</summary>
    public void Add(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other._counts.Length != _counts.Length || other._subBucketHalfCount != _subBucketHalfCount)
        {
            throw new ArgumentException("Histograms of different shapes.", nameof(other));
        }

        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }

        TotalCount += other.TotalCount;
        Clamped += other.Clamped;
        _sum += other._sum;
        if (other.TotalCount > 0)
        {
            Min = Math.Min(Min, other.Min);
            Max = Math.Max(Max, other.Max);
        }
    }

    /// <summary>The width of the range of values counted together with <paramref name="value"/>.</summary>
    public long SizeOfEquivalentRange(long value)
    {
        var bucket = BucketOf(value);
        var sub = SubBucketOf(value, bucket);
        return 1L << (sub >= 2 * _subBucketHalfCount ? bucket + 1 : bucket);
    }

    public long LowestEquivalentValue(long value)
    {
        var bucket = BucketOf(value);
        return SubBucketOf(value, bucket) << bucket;
    }

    public long HighestEquivalentValue(long value) => LowestEquivalentValue(value) + SizeOfEquivalentRange(value) - 1;

    private int BucketOf(long value) => _leadingZeroCountBase - System.Numerics.BitOperations.LeadingZeroCount((ulong)(value | _subBucketMask));

    private static long SubBucketOf(long value, int bucket) => value >> bucket;

    private int IndexOf(long value)
    {
        var bucket = BucketOf(value);
        var sub = (int)SubBucketOf(value, bucket);
        return ((bucket + 1) << _subBucketHalfCountMagnitude) + (sub - _subBucketHalfCount);
    }

    private long ValueAt(int index)
    {
        var bucket = (index >> _subBucketHalfCountMagnitude) - 1;
        var sub = (index & (_subBucketHalfCount - 1)) + _subBucketHalfCount;
        if (bucket < 0)
        {
            sub -= _subBucketHalfCount;
            bucket = 0;
        }

        return (long)sub << bucket;
    }
}
