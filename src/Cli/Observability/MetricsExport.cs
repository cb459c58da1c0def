using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Monal.Push.Cli.Observability;

/// <summary>
/// The <c>Monal.Push.*</c> meters, exported by OpenTelemetry (issue 17): scraped on <c>/metrics</c> by its Prometheus
/// exporter and, when <c>Observability:Otlp:Endpoint</c> is set, pushed to an OTLP collector by the same meter
/// provider. The view keeps the scrape of the hand-written exporter it replaced: names without unit suffixes,
/// <c>_total</c> on synchronous counters only, and the same default histogram buckets.
/// </summary>
internal static class MetricsExport
{
    public const string ScrapePath = "/metrics";

    /// <summary>Buckets of a histogram that gives no advice (milliseconds for latencies).</summary>
    internal static readonly double[] DefaultBuckets = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

    public static IServiceCollection AddMetricsExport(this IServiceCollection services, IConfiguration configuration)
    {
        var otlp = OtlpExportOptions.From(configuration);
        services.AddOpenTelemetry().WithMetrics(metrics =>
        {
            metrics.ConfigureResource(resource => resource.AddService("monal-push"));
            metrics.AddMeter("Monal.Push.*");
            // The runtime's own series (garbage collector, JIT, thread pool, working set): what holds the memory.
            metrics.AddMeter("System.Runtime");
            metrics.AddPrometheusExporter(o =>
            {
                // Names as the operators' dashboards know them: dots become underscores, no unit suffix, no scope
                // labels, no target_info series; every scrape is fresh (the projection lag is read for it).
                o.TranslationStrategy = PrometheusAspNetCoreTranslationStrategy.UnderscoreEscapingWithoutSuffixes;
                o.ScopeInfoEnabled = false;
                o.TargetInfoEnabled = false;
                o.ScrapeResponseCacheDurationMilliseconds = 0;
            });
            if (otlp is not null)
            {
                metrics.AddOtlpExporter((exporter, reader) =>
                {
                    exporter.Endpoint = otlp.Endpoint;
                    exporter.Protocol = otlp.Protocol;
                    reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = otlp.ExportIntervalMilliseconds;
                });
            }
        });
        services.ConfigureOpenTelemetryMeterProvider((provider, builder) =>
        {
            var ours = provider.GetRequiredService<IMeterFactory>();
            builder.AddView(instrument => StreamOf(instrument, ours));
        });
        return services;
    }

    /// <summary>
    /// Serves the scrape; <paramref name="beforeScrape"/> runs first in the scrape's own pipeline (it records the
    /// gauges that are read at scrape time).
    /// </summary>
    public static void MapMetricsScrape(this WebApplication app, Action<IApplicationBuilder> beforeScrape) =>
        app.MapPrometheusScrapingEndpoint(ScrapePath, meterProvider: null, configureBranchedPipeline: beforeScrape, optionsName: null);

    /// <summary>
    /// One view for every instrument (two views matching one instrument would export it twice). Meters made by
    /// another host's IMeterFactory are dropped: with several hosts in one process (tests), each exports its own and
    /// the process-wide (unscoped) meters only.
    /// </summary>
    internal static MetricStreamConfiguration? StreamOf(Instrument instrument, IMeterFactory ours)
    {
        if (instrument.Meter.Scope is not null && !ReferenceEquals(instrument.Meter.Scope, ours))
        {
            return MetricStreamConfiguration.Drop;
        }

        if (instrument is Counter<int> or Counter<long> or Counter<double>
            && !instrument.Name.EndsWith("_total", StringComparison.Ordinal))
        {
            // Prometheus names counters "…_total"; instruments named the OpenTelemetry way ("monal.push.x") get it
            // here. Observable counters never had it (monal_push_ingest_component_reconnects).
            return new MetricStreamConfiguration { Name = instrument.Name + "_total" };
        }

        var advised = instrument switch
        {
            Histogram<int> h => h.Advice?.HistogramBucketBoundaries is { Count: > 0 },
            Histogram<long> h => h.Advice?.HistogramBucketBoundaries is { Count: > 0 },
            Histogram<double> h => h.Advice?.HistogramBucketBoundaries is { Count: > 0 },
            _ => true,
        };
        return advised ? null : new ExplicitBucketHistogramConfiguration { Boundaries = DefaultBuckets };
    }
}
