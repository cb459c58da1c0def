using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Monal.Push.Delivery.PushModules;

namespace Monal.Push.Cli.Observability;

/// <summary>Readiness: every push module's credentials load and its JWT signs (Apple is not called).</summary>
internal sealed class PushModulesHealthCheck(IConfiguration configuration, TimeProvider clock) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var checks = PushModuleDiagnostics.Check(configuration, clock);
        var problems = checks.Where(c => !c.Ready).SelectMany(c => c.Problems).ToList();
        return Task.FromResult(checks.Count == 0
            ? HealthCheckResult.Unhealthy("no push module is configured (PushModules:<name>)")
            : problems.Count == 0
                ? HealthCheckResult.Healthy($"{checks.Count} module(s): {string.Join(", ", checks.Select(c => c.Module))}")
                : HealthCheckResult.Unhealthy(string.Join("; ", problems)));
    }
}
