using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Monal.Push.Cli.Observability;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// Issue 17: `/metrics` is served by OpenTelemetry's Prometheus exporter with the names, labels, types and buckets
/// the hand-written exporter had, each host sees its own meters only, and an OTLP collector receives the same
/// metrics when (and only when) an endpoint is configured.
/// </summary>
public sealed class MetricsExportTests
{
    [Fact]
    public async Task Scrape_Should_ExposeTheRuntimesMemorySeries_When_AGarbageCollectionHasRun()
    {
        await using var host = await StartAsync([]);
        GC.Collect();

        var text = await ScrapeAsync(host);

        // What holds serve's memory (docs/operators.md, section 5): the collector's committed memory and heap by generation.
        Assert.Matches(@"(?m)^dotnet_gc_last_collection_memory_committed_size\{\} [1-9]", text);
        Assert.Matches(@"(?m)^dotnet_gc_last_collection_heap_size\{gc_heap_generation=""gen2""\} [0-9]", text);
        Assert.Matches(@"(?m)^dotnet_process_memory_working_set\{\} [1-9]", text);
    }

    [Fact]
    public async Task Scrape_Should_ExposeCountersHistogramsAndGauges_When_MonalMetersRecord()
    {
        var suffix = Guid.NewGuid().ToString("N")[..6];
        await using var host = await StartAsync([]);
        await using var other = await StartAsync([]);
        using var meter = new Meter("Monal.Push.Test" + suffix);
        using var ignored = new Meter("Other.Meter" + suffix);
        var scoped = host.Services.GetRequiredService<IMeterFactory>().Create("Monal.Push.Scoped" + suffix);
        var foreign = other.Services.GetRequiredService<IMeterFactory>().Create("Monal.Push.Scoped" + suffix);
        var counter = meter.CreateCounter<long>($"monal.push.test{suffix}.publishes", "{publish}", "publishes");
        var histogram = meter.CreateHistogram<double>($"monal_test{suffix}_latency", "ms", "latency",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [1, 10] });
        var unadvised = meter.CreateHistogram<double>($"monal.test{suffix}.delay", "ms", "delay");
        var lag = 42L;
        meter.CreateObservableGauge($"monal_test{suffix}_lag", () => lag, "{events}");
        meter.CreateObservableCounter($"monal.test{suffix}.reconnects", () => 3L, "{reconnect}");
        ignored.CreateCounter<long>($"other{suffix}").Add(1);
        scoped.CreateCounter<long>($"monal.test{suffix}.own").Add(4);
        foreign.CreateCounter<long>($"monal.test{suffix}.foreign").Add(5);

        counter.Add(2, new KeyValuePair<string, object?>("outcome", "accepted"));
        counter.Add(3, new KeyValuePair<string, object?>("outcome", "accepted"));
        counter.Add(1, new KeyValuePair<string, object?>("outcome", "item-not-found"));
        histogram.Record(0.5);
        histogram.Record(5);
        histogram.Record(50);
        unadvised.Record(0.7);
        var text = await ScrapeAsync(host);

        // A series without labels is written "name{} value" (the same sample to Prometheus as "name value").

        Assert.Contains($"# TYPE monal_push_test{suffix}_publishes_total counter", text, StringComparison.Ordinal);
        Assert.Contains($"monal_push_test{suffix}_publishes_total{{outcome=\"accepted\"}} 5", text, StringComparison.Ordinal);
        Assert.Contains($"monal_push_test{suffix}_publishes_total{{outcome=\"item-not-found\"}} 1", text, StringComparison.Ordinal);
        Assert.Contains($"# TYPE monal_test{suffix}_latency histogram", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_latency_bucket{{le=\"1\"}} 1", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_latency_bucket{{le=\"10\"}} 2", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_latency_bucket{{le=\"+Inf\"}} 3", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_latency_sum{{}} 55.5", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_latency_count{{}} 3", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_delay_bucket{{le=\"0.5\"}} 0", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_delay_bucket{{le=\"1\"}} 1", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_delay_bucket{{le=\"10000\"}} 1", text, StringComparison.Ordinal);
        Assert.Contains($"# TYPE monal_test{suffix}_lag gauge", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_lag{{}} 42", text, StringComparison.Ordinal);
        Assert.Contains($"# TYPE monal_test{suffix}_reconnects counter", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_reconnects{{}} 3", text, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_own_total{{}} 4", text, StringComparison.Ordinal);
        Assert.DoesNotContain($"foreign", text, StringComparison.Ordinal);
        Assert.DoesNotContain($"other{suffix}", text, StringComparison.Ordinal);
        Assert.DoesNotContain("otel_scope", text, StringComparison.Ordinal);
        Assert.DoesNotContain("target_info", text, StringComparison.Ordinal);

        lag = 7;
        counter.Add(1, new KeyValuePair<string, object?>("outcome", "item-not-found"));
        var again = await ScrapeAsync(host);
        Assert.Contains($"monal_test{suffix}_lag{{}} 7", again, StringComparison.Ordinal);
        Assert.Contains($"monal_push_test{suffix}_publishes_total{{outcome=\"item-not-found\"}} 2", again, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_foreign_total{{}} 5", await ScrapeAsync(other), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Otlp_Should_ReceiveTheMetrics_When_AnEndpointIsConfigured()
    {
        var suffix = Guid.NewGuid().ToString("N")[..6];
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var collector = await StartCollectorAsync(received, $"monal.test{suffix}.otlp");
        await using var host = await StartAsync([
            $"Observability:Otlp:Endpoint={Address(collector)}/v1/metrics",
            "Observability:Otlp:Protocol=http/protobuf",
            "Observability:Otlp:ExportIntervalSeconds=0.2"]);
        host.Services.GetRequiredService<IMeterFactory>().Create("Monal.Push.Otlp" + suffix)
            .CreateCounter<long>($"monal.test{suffix}.otlp").Add(9);

        var body = await received.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // The protobuf carries the instrument's name with the view's suffix, and the scrape still works beside it.
        Assert.Contains($"monal.test{suffix}.otlp_total", body, StringComparison.Ordinal);
        Assert.Contains($"monal_test{suffix}_otlp_total{{}} 9", await ScrapeAsync(host), StringComparison.Ordinal);
    }

    [Fact]
    public void OtlpOptions_Should_BeOff_When_NoEndpointIsConfigured_AndRefuseABadOne()
    {
        Assert.Null(OtlpExportOptions.From(Configuration([])));
        var grpc = OtlpExportOptions.From(Configuration(["Observability:Otlp:Endpoint=http://collector:4317"]));
        Assert.Equal(OpenTelemetry.Exporter.OtlpExportProtocol.Grpc, grpc!.Protocol);
        Assert.Equal(60_000, grpc.ExportIntervalMilliseconds);
        Assert.Throws<InvalidOperationException>(() => OtlpExportOptions.From(Configuration(["Observability:Otlp:Endpoint=collector:4317"])));
        Assert.Throws<InvalidOperationException>(() => OtlpExportOptions.From(
            Configuration(["Observability:Otlp:Endpoint=http://collector:4318", "Observability:Otlp:Protocol=http/json"])));
    }

    private static IConfiguration Configuration(string[] settings) => new ConfigurationBuilder()
        .AddInMemoryCollection(settings.Select(s => s.Split('=', 2)).Select(p => new KeyValuePair<string, string?>(p[0], p[1])))
        .Build();

    private static async Task<WebApplication> StartAsync(string[] settings)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddMetricsExport(Configuration(settings));
        var app = builder.Build();
        app.MapMetricsScrape(_ => { });
        await app.StartAsync();
        return app;
    }

    private static async Task<string> ScrapeAsync(WebApplication host)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync(new Uri(Address(host) + MetricsExport.ScrapePath));
    }

    private static string Address(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();

    /// <summary>An OTLP/HTTP receiver: signals the first export whose protobuf names <paramref name="expected"/>.</summary>
    private static async Task<WebApplication> StartCollectorAsync(TaskCompletionSource<string> received, string expected)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapPost("/v1/metrics", async (HttpContext context) =>
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            var body = Encoding.UTF8.GetString(buffer.ToArray());
            if (context.Request.ContentType == "application/x-protobuf" && body.Contains(expected, StringComparison.Ordinal))
            {
                received.TrySetResult(body);
            }

            return Results.Ok();
        });
        await app.StartAsync();
        return app;
    }
}
