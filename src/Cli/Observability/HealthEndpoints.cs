using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Monal.Push.Projections.Daemon;

namespace Monal.Push.Cli.Observability;

/// <summary>`/health` (liveness), `/health/ready` (every readiness check, as JSON) and `/metrics` (Prometheus text, MetricsExport).</summary>
internal static class HealthEndpoints
{
    public const string ReadyTag = "ready";

    private static readonly System.Diagnostics.Metrics.Meter Meter = new("Monal.Push.Projections.Status");

    private static readonly System.Diagnostics.Metrics.Gauge<long> ProjectionLag =
        Meter.CreateGauge<long>("monal_projection_lag", "{events}", "Events each projection is behind the log");

    public static IServiceCollection AddObservability(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddMetricsExport(configuration);
        services.AddHealthChecks()
            .AddCheck<LedgerHealthCheck>("ledger", tags: [ReadyTag])
            .AddCheck<PushModulesHealthCheck>("push-modules", tags: [ReadyTag])
            .AddCheck<ProjectionsHealthCheck>("projections", tags: [ReadyTag]);
        return services;
    }

    public static void MapObservability(this WebApplication app)
    {
        app.MapHealthChecks("/health", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteJson });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = _ => true, ResponseWriter = WriteJson });
        app.MapMetricsScrape(scrape => scrape.Use(async (context, next) =>
        {
            await RecordProjectionLagAsync(context.RequestServices.GetRequiredService<ProjectionStatus>(), context.RequestAborted);
            await next(context);
        }));
    }

    /// <summary>
    /// Projection lag is read from the database at scrape time, once a scrape (a gauge, not an accumulated counter);
    /// an OTLP export sends the value the last scrape read.
    /// </summary>
    private static async Task RecordProjectionLagAsync(ProjectionStatus projections, CancellationToken ct)
    {
        try
        {
            foreach (var row in await projections.GetStatusAsync(ct))
            {
                ProjectionLag.Record(row.Lag, new KeyValuePair<string, object?>("projection", row.Name));
            }
        }
        catch (Npgsql.NpgsqlException)
        {
            // The ledger is unreachable: /health/ready says so; the other metrics are still worth serving.
        }
    }

    private static Task WriteJson(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        var body = new Dictionary<string, object>
        {
            ["status"] = report.Status.ToString(),
            ["checks"] = report.Entries.ToDictionary(
                e => e.Key,
                e => new Dictionary<string, string?>
                {
                    ["status"] = e.Value.Status.ToString(),
                    ["description"] = e.Value.Description,
                    ["duration_ms"] = e.Value.Duration.TotalMilliseconds.ToString("F1", System.Globalization.CultureInfo.InvariantCulture),
                }),
        };
        return context.Response.WriteAsync(JsonSerializer.Serialize(body, HealthJson.Default.DictionaryStringObject));
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, Dictionary<string, string?>>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string?>))]
internal sealed partial class HealthJson : System.Text.Json.Serialization.JsonSerializerContext;
