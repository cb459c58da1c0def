using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;

namespace Monal.Push.Ledger;

/// <summary>
/// The node's share of PostgreSQL's connections (issue 19). One data source per process serves every user of the
/// database (the group-commit writers, the delivery queue, the LISTEN connections, the projection leader's lock, Quartz's
/// clustered store), so its <c>Maximum Pool Size</c> is the most this node ever opens. Without one in the connection
/// string a node would take up to Npgsql's 100, all of a default PostgreSQL; the default here lets three nodes share
/// one (3 × 25 = 75 of <c>max_connections</c> 100 minus 3 reserved for superusers).
/// </summary>
public sealed partial class ConnectionBudget(NpgsqlDataSource dataSource)
{
    /// <summary>The pool size applied when the connection string sets none (docs/operators.md, "Running several nodes").</summary>
    public const int DefaultMaxPoolSize = 25;

    /// <summary>What the node's connections are named in <c>pg_stat_activity</c> unless the connection string names them.</summary>
    public const string ApplicationName = "monal-push";

    private Snapshot? _lastSeen;

    /// <summary>The most connections this node opens: the data source's <c>Maximum Pool Size</c>.</summary>
    public int PoolSize { get; } = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString).MaxPoolSize;

    /// <summary>
    /// Applies <see cref="DefaultMaxPoolSize"/> unless the connection string sets <c>Maximum Pool Size</c>, and names the
    /// connections <see cref="ApplicationName"/> unless it sets <c>Application Name</c>.
    /// </summary>
    public static void Apply(NpgsqlDataSourceBuilder builder, string connectionString)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(connectionString);
        if (!MaxPoolSizeKeyword().IsMatch(connectionString))
        {
            builder.ConnectionStringBuilder.MaxPoolSize = DefaultMaxPoolSize;
        }

        if (!ApplicationNameKeyword().IsMatch(connectionString))
        {
            builder.ConnectionStringBuilder.ApplicationName = ApplicationName;
        }
    }

    /// <summary>Reads PostgreSQL's limits and what is connected now; remembered for <see cref="Exceeded"/>.</summary>
    public async Task<Snapshot> ReadAsync(CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand("""
            select current_setting('max_connections')::int,
                   current_setting('superuser_reserved_connections')::int,
                   (select count(*) from pg_stat_activity where backend_type = 'client backend')::int,
                   (select count(*) from pg_stat_activity where backend_type = 'client backend'
                        and application_name = current_setting('application_name'))::int
            """);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        var snapshot = new Snapshot(PoolSize, reader.GetInt32(0), reader.GetInt32(1), reader.GetInt32(2), reader.GetInt32(3));
        _lastSeen = snapshot;
        return snapshot;
    }

    /// <summary>
    /// PostgreSQL refused a connection with SQLSTATE 53300 (too many clients): the error with the arithmetic and the fix.
    /// </summary>
    public ConnectionBudgetException Exceeded(PostgresException refused)
    {
        ArgumentNullException.ThrowIfNull(refused);
        var seen = _lastSeen;
        var limits = seen is null
            ? "PostgreSQL's max_connections (100 by default, of which superuser_reserved_connections, 3 by default, are kept for superusers)"
            : Invariant($"PostgreSQL's max_connections = {seen.MaxConnections}, of which {seen.Reserved} are kept for superusers, so {seen.Available} for all nodes and every other client");
        var fit = seen is null ? "" : Invariant($"; at most {seen.NodesThatFit} nodes of {PoolSize} fit");
        return new ConnectionBudgetException(
            "PostgreSQL refused a connection: too many clients (SQLSTATE 53300). Each node opens up to its Maximum Pool Size, " +
            Invariant($"{PoolSize} here, so N nodes need N × {PoolSize}, plus the connections of other clients, within ") +
            limits + fit +
            ". Fix: lower Maximum Pool Size in ConnectionStrings:Ledger on every node (nodes × pool + other clients ≤ " +
            "max_connections − superuser_reserved_connections), or raise max_connections in postgresql.conf " +
            "(docs/operators.md, \"Running several nodes\").", refused);
    }

    private static string Invariant(FormattableString text) => FormattableString.Invariant(text);

    /// <summary>One reading of the budget.</summary>
    /// <param name="PoolSize">This node's Maximum Pool Size.</param>
    /// <param name="MaxConnections">PostgreSQL's <c>max_connections</c>.</param>
    /// <param name="Reserved">Its <c>superuser_reserved_connections</c>.</param>
    /// <param name="Open">Client connections open now, all clients.</param>
    /// <param name="OpenByMonalPush">Of those, the ones named like this node's (every monal-push node by default).</param>
    public sealed record Snapshot(int PoolSize, int MaxConnections, int Reserved, int Open, int OpenByMonalPush)
    {
        /// <summary>Connections ordinary roles may open.</summary>
        public int Available => Math.Max(0, MaxConnections - Reserved);

        /// <summary>How many nodes of this pool size fit, if nothing else were connected.</summary>
        public int NodesThatFit => PoolSize <= 0 ? 0 : Available / PoolSize;

        /// <summary>One line for the start log and `doctor`.</summary>
        public override string ToString() =>
            Invariant($"this node opens at most {PoolSize} connections (Maximum Pool Size); PostgreSQL max_connections {MaxConnections} − ") +
            Invariant($"{Reserved} reserved for superusers = {Available}, so {NodesThatFit} nodes of {PoolSize} fit ({NodesThatFit} × {PoolSize} = ") +
            Invariant($"{NodesThatFit * PoolSize}); open now: {Open} ({OpenByMonalPush} by monal-push)");
    }

    [GeneratedRegex(@"(^|;)\s*(maximum\s*pool\s*size|max\s*pool\s*size|maxpoolsize)\s*=", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex MaxPoolSizeKeyword();

    [GeneratedRegex(@"(^|;)\s*(application\s*name|applicationname)\s*=", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ApplicationNameKeyword();
}

/// <summary>PostgreSQL refused a connection (SQLSTATE 53300): the message carries the arithmetic and the fix.</summary>
public sealed class ConnectionBudgetException(string message, PostgresException inner) : Exception(message, inner);
