using System.Diagnostics.Metrics;
using Monal.Push.Cli.Observability;

namespace Monal.Push.Tests.Cli;

public sealed class PrometheusMetricsTests
{
    [Fact]
    public void Render_Should_ExposeCountersHistogramsAndGauges_When_MonalMetersRecord()
    {
        var suffix = Guid.NewGuid().ToString("N")[..6];
        using var exporter = new PrometheusMetrics();
        using var meter = new Meter("Monal.Push.Test" + suffix);
        using var ignored = new Meter("Other.Meter" + suffix);
        var counter = meter.CreateCounter<long>($"monal.push.test{suffix}.publishes", description: "publishes");
        var histogram = meter.CreateHistogram<double>($"monal_test{suffix}_latency", "ms", "latency",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [1, 10] });
        var lag = 42L;
        meter.CreateObservableGauge($"monal_test{suffix}_lag", () => lag);
        ignored.CreateCounter<long>($"other{suffix}").Add(1);

        counter.Add(2, new KeyValuePair<string, object?>("outcome", "accepted"));
        counter.Add(3, new KeyValuePair<string, object?>("outcome", "accepted"));
        counter.Add(1, new KeyValuePair<string, object?>("outcome", "item-not-found"));
        histogram.Record(0.5);
        histogram.Record(5);
        histogram.Record(50);
        var text = exporter.Render();

        Assert.Contains($"# TYPE monal_push_test{suffix}_publishes_total counter", text, StringComparison.Ordinal);
        Assert.Contains($"monal_push_test{suffix}_publishes_total{{outcome=\"accepted\"}} 5", text, StringComparison.Ordinal);
        Assert.Contains($"monal_push_test{suffix}_publishes_total{{outcome=\"item-not-found\"}} 1", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_latency_bucket{{le=\"1\"}} 1", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_latency_bucket{{le=\"10\"}} 2", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_latency_bucket{{le=\"+Inf\"}} 3", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_latency_sum 55.5", text, StringComparison.Ordinal);
        Assert.Contains($"# TYPE monal_test{suffix}_lag gauge", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_lag 42", text, StringComparison.Ordinal);
        Assert.DoesNotContain($"other{suffix}", text, StringComparison.Ordinal);

        lag = 7;
        Assert.Contains($"monal_test{suffix}_lag 7", exporter.Render(), StringComparison.Ordinal);
    }
}
