using Microsoft.Extensions.Diagnostics.HealthChecks;
using Monal.Push.Ledger.Schema;

namespace Monal.Push.Cli.Observability;

/// <summary>Readiness: the ledger answers and every migration of this build is applied.</summary>
internal sealed class LedgerHealthCheck(SchemaMigrator migrator) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var pending = await migrator.PendingAsync(MigrationSource.Embedded(), cancellationToken);
            return pending.Count == 0
                ? HealthCheckResult.Healthy("reachable and migrated")
                : HealthCheckResult.Unhealthy($"migrations not applied: {string.Join(", ", pending)} (run `monal-push migrate`)");
        }
        catch (Exception ex) when (ex is Npgsql.NpgsqlException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy("the ledger database is unreachable: " + ex.GetType().Name);
        }
    }
}
