using Npgsql;

namespace Monal.Push.Ledger;

/// <summary>How the ledger's data source is configured, shared by the host and the benchmarks.</summary>
public static class LedgerDataSource
{
    /// <summary>Automatic preparation, unless the connection string chose otherwise.</summary>
    public const int DefaultMaxAutoPrepare = 64;

    /// <summary>
    /// Turns on Npgsql's automatic statement preparation unless the connection string sets <c>Max Auto Prepare</c>
    /// itself (set it to 0 behind a transaction-pooling proxy). The append statement is a large CTE that PostgreSQL
    /// would otherwise parse and plan for every group-commit batch.
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
    }
}
