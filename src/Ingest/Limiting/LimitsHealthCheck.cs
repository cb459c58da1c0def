using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Monal.Push.Ingest.Limiting;

/// <summary>
/// The limits in <c>/health/ready</c> (issue 18): always healthy (a limited domain is the limits working, not this
/// server failing), with the configured limits and how many domains were refused within the last minute.
/// </summary>
internal sealed class LimitsHealthCheck(IOptions<LimitsOptions> options, DomainLimiter limiter) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var limited = limiter.Limited;
        var data = new Dictionary<string, object>
        {
            ["domainsTracked"] = limiter.Tracked,
            ["domainsLimited"] = limited,
        };
        return Task.FromResult(HealthCheckResult.Healthy(
            $"{options.Value.Describe()}; {limited} domain(s) limited in the last minute", data));
    }
}
