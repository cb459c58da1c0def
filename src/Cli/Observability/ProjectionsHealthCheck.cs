using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Monal.Push.Projections.Daemon;

namespace Monal.Push.Cli.Observability;

/// <summary>Readiness: every projection is within <c>Health:MaxProjectionLag</c> events of the log (default 10,000).</summary>
internal sealed class ProjectionsHealthCheck(ProjectionStatus status, IConfiguration configuration) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var max = configuration.GetValue("Health:MaxProjectionLag", 10_000L);
        var rows = await status.GetStatusAsync(cancellationToken);
        var behind = rows.Where(r => r.Lag > max).Select(r => $"{r.Name} is {r.Lag} events behind").ToList();
        var data = rows.ToDictionary(r => r.Name, r => (object)r.Lag);
        return behind.Count == 0
            ? HealthCheckResult.Healthy($"lag at most {rows.Select(r => r.Lag).DefaultIfEmpty().Max()} events", data)
            : HealthCheckResult.Unhealthy(string.Join("; ", behind), data: data);
    }
}
