using Monal.Push.Load.Measuring;
using Monal.Push.Load.Publishing;

namespace Monal.Push.Tests.Load;

public sealed class LatencyHistogramTests
{
    [Fact]
    public void ValueAtPercentile_Should_ReturnExactValues_When_ValuesAreBelowTheLinearRange()
    {
        var histogram = new LatencyHistogram();
        for (var v = 1; v <= 1000; v++)
        {
            histogram.Record(v);
        }

        Assert.Equal(500, histogram.ValueAtPercentile(50));
        Assert.Equal(990, histogram.ValueAtPercentile(99));
        Assert.Equal(999, histogram.ValueAtPercentile(99.9));
        Assert.Equal(1000, histogram.ValueAtPercentile(100));
        Assert.Equal(1, histogram.ValueAtPercentile(0));
        Assert.Equal(500.5, histogram.Mean);
    }

    [Fact]
    public void ValueAtPercentile_Should_StayWithinThePrecision_When_ValuesSpanManyPowersOfTwo()
    {
        // 1 µs to ~1 hour, log-uniform: every percentile must be within 0.1 % (3 significant digits) of the exact one.
        var random = new Random(42);
        var values = Enumerable.Range(0, 200_000).Select(_ => (long)Math.Exp(random.NextDouble() * Math.Log(3_000_000_000))).ToArray();
        var histogram = new LatencyHistogram();
        foreach (var v in values)
        {
            histogram.Record(v);
        }

        Array.Sort(values);
        foreach (var p in new[] { 10.0, 50, 90, 99, 99.9, 99.99 })
        {
            var exact = values[(int)Math.Ceiling(p / 100 * values.Length * (1 - 1e-12)) - 1];
            var measured = histogram.ValueAtPercentile(p);
            Assert.InRange(measured, exact, exact + Math.Max(1, exact / 1000));
        }

        Assert.Equal(values[^1], histogram.ValueAtPercentile(100));
        Assert.Equal(values[0], histogram.Min);
    }

    [Fact]
    public void ValueAtPercentile_Should_SeeTheTail_When_OneValueInAThousandIsSlow()
    {
        var histogram = new LatencyHistogram();
        for (var i = 0; i < 999; i++)
        {
            histogram.Record(2_000);
        }

        histogram.Record(5_000_000);

        Assert.Equal(2_000, histogram.ValueAtPercentile(99.9));
        Assert.InRange(histogram.ValueAtPercentile(99.95), 5_000_000, 5_005_000);
        Assert.Equal(5_000_000, histogram.Max);
    }

    [Fact]
    public void Record_Should_ClampAndCount_When_TheValueIsAboveTheHighestTrackable()
    {
        var histogram = new LatencyHistogram(highestTrackableValue: 1_000_000);

        histogram.Record(50_000_000);

        Assert.Equal(1, histogram.Clamped);
        Assert.Equal(1_000_000, histogram.Max);
        Assert.InRange(histogram.ValueAtPercentile(50), 999_000, 1_000_000);
    }

    [Fact]
    public void Add_Should_MergeCounts_When_TwoHistogramsHaveTheSameShape()
    {
        var a = new LatencyHistogram();
        var b = new LatencyHistogram();
        a.Record(10);
        b.Record(30);
        b.Record(20);

        a.Add(b);

        Assert.Equal(3, a.TotalCount);
        Assert.Equal(20, a.ValueAtPercentile(50));
        Assert.Equal(30, a.Max);
        Assert.Equal(10, a.Min);
    }

    [Fact]
    public void TryParseSequence_Should_ReadTheSequenceBack_When_TheIdWasWrittenInEitherStyle()
    {
        var templates = new PublishTemplates("push.localhost");
        foreach (var style in Enum.GetValues<PublishStyle>())
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            templates.Write(buffer, style, registered: style == PublishStyle.EjabberdEmpty, 123_456_789, 1_795_312_753_560,
                "example.org"u8, "0123abcd"u8, "monalProdiOS"u8);
            var iq = System.Xml.Linq.XElement.Parse(System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan));

            Assert.True(PublishTemplates.TryParseSequence((string)iq.Attribute("id")!, out var sequence));
            Assert.Equal(123_456_789, sequence);
            Assert.Equal("push.localhost", (string?)iq.Attribute("to"));
        }
    }
}
