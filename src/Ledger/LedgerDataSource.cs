using Npgsql;

namespace Monal.Push.Ledger;

/// <summary>How the ledger's data source is configured, shared by the host and the benchmarks.</summary>
public static class LedgerDataSource
{
    /// <summary>Automatic preparation, unless the connection string chose otherwise.</summary>
    public const int DefaultMaxAutoPrepare = 64;

    /// <summary>
    /// Turns on Npgsql's automatic statement preparation unless the connection string sets <c>Max Auto Prepare</c>
    /// itself (set it to 0 behind a transaction-pooling proxy; the append statement is a large CTE that PostgreSQL
    /// would otherwise parse and plan for every group-commit batch), and skips the session reset of pooled
    /// connections unless the connection string sets <c>No Reset On Close</c> itself.
    /// </summary>
    public static void PrepareStatements(NpgsqlDataSourceBuilder builder, string connectionString)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var chosen = connectionString.Contains("auto prepare", StringComparison.OrdinalIgnoreCase)
            || connectionString.Contains("autoprepare", StringComparison.OrdinalIgnoreCase);
        if (!chosen)
        {
            builder.ConnectionStringBuilder.MaxAutoPrepare = DefaultMaxAutoPrepare;
        }

        // Npgsql resets a pooled connection's session (RESET ALL, CLOSE ALL, UNLISTEN *, unlock all advisory locks…)
        // before its next use: a few hundred microseconds of server CPU, and a publish uses several pooled connections.
        // Nothing here leaves session state on a pooled connection: settings last one transaction (TransactionSetting,
        // or SET LOCAL inside BEGIN) or are reset in a finally, and session advisory locks and LISTENs live on
        // connections held for that purpose.
        if (!connectionString.Contains("reset on close", StringComparison.OrdinalIgnoreCase)
            && !connectionString.Contains("noresetonclose", StringComparison.OrdinalIgnoreCase))
        {
            builder.ConnectionStringBuilder.NoResetOnClose = true;
        }
    }
}
