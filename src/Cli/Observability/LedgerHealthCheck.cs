using Microsoft.Extensions.Diagnostics.HealthChecks;
using Monal.Push.Ledger.Faults;
using Monal.Push.Ledger.Schema;

namespace Monal.Push.Cli.Observability;

/// <summary>
/// Readiness: the ledger answers and every migration of this build is applied. A database that is down or was lost
/// a moment ago is <c>Degraded</c>, with the reason (a SQLSTATE or an error kind, never a value): the process stays up,
/// answers publishes <c>wait</c> and its loops retry with backoff (issue 15). Missing migrations are Unhealthy.
/// </summary>
internal sealed class LedgerHealthCheck(SchemaMigrator migrator, LedgerAvailability availability) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<string> pending;
        try
        {
            pending = await migrator.PendingAsync(MigrationSource.Embedded(), cancellationToken);
        }
        catch (Exception ex) when (TransientFaults.IsTransient(ex, cancellationToken))
        {
            var reason = TransientFaults.Describe(ex);
            var earlier = availability.Degraded();
            availability.Failed("health check", reason);
            return HealthCheckResult.Degraded($"the ledger database is unreachable ({reason})"
                + (earlier is null ? "; publishes are answered wait, loops retry with backoff" : "; since " + earlier));
        }

        if (pending.Count > 0)
        {
            return HealthCheckResult.Unhealthy($"migrations not applied: {string.Join(", ", pending)} (run `monal-push migrate`)");
        }

        availability.Succeeded();
        return HealthCheckResult.Healthy("reachable and migrated");
    }
}
