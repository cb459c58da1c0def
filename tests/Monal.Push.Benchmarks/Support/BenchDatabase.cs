using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Embedded;
using Monal.Push.Ledger.Schema;
using Npgsql;

namespace Monal.Push.Benchmarks.Support;

/// <summary>A private PostgreSQL for one benchmark run (the embedded code `serve` uses), or MONAL_BENCH_DB.</summary>
internal sealed class BenchDatabase : IAsyncDisposable
{
    private readonly EmbeddedPostgres? _cluster;
    private readonly string _folder;

    private BenchDatabase(EmbeddedPostgres? cluster, string folder, NpgsqlDataSource dataSource, string connectionString)
    {
        _cluster = cluster;
        _folder = folder;
        DataSource = dataSource;
        ConnectionString = connectionString;
    }

    public NpgsqlDataSource DataSource { get; }

    public string ConnectionString { get; }

    /// <param name="migrate">Whether to apply the embedded migrations (serve applies its own build's otherwise).</param>
    /// <param name="statements">
    /// Load pg_stat_statements into the private cluster (a restart; an external database must preload it itself), for
    /// `./bench --statements`. It costs the database some CPU, so runs with it are not compared with runs without.
    /// </param>
    public static async Task<BenchDatabase> StartAsync(bool migrate = true, bool statements = false)
    {
        var folder = Path.Combine(Path.GetTempPath(), "monal-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var external = Environment.GetEnvironmentVariable("MONAL_BENCH_DB");
        EmbeddedPostgres? cluster = null;
        string cs;
        if (string.IsNullOrEmpty(external))
        {
            cluster = await EmbeddedPostgres.StartAsync(folder, NullLogger.Instance);
            if (statements)
            {
                await using (var connection = new NpgsqlConnection(cluster.ConnectionString()))
                {
                    await connection.OpenAsync();
                    await using var alter = new NpgsqlCommand("alter system set shared_preload_libraries = 'pg_stat_statements'", connection);
                    await alter.ExecuteNonQueryAsync();
                }

                await cluster.RestartAsync();
            }

            cs = new NpgsqlConnectionStringBuilder(cluster.ConnectionString()) { MaxPoolSize = 100 }.ConnectionString;
        }
        else
        {
            cs = external;
        }

        var builder = new NpgsqlDataSourceBuilder(cs);
        LedgerDataSource.PrepareStatements(builder, cs);
        var dataSource = builder.Build();
        if (statements)
        {
            await using var create = dataSource.CreateCommand("create extension if not exists pg_stat_statements");
            await create.ExecuteNonQueryAsync();
        }

        if (migrate)
        {
            await new SchemaMigrator(dataSource, NullLogger<SchemaMigrator>.Instance).MigrateAsync(MigrationSource.Embedded());
        }

        return new BenchDatabase(cluster, folder, dataSource, cs);
    }

    /// <summary>
    /// CPU time the private cluster has used so far (postmaster, its live children, and the children it has reaped),
    /// from /proc; zero for an external database.
    /// </summary>
    public TimeSpan ServerCpu() => ServerCpuByProcess().Values.Aggregate(TimeSpan.Zero, (a, b) => a + b);

    /// <summary>
    /// The same CPU time by kind of process: the client backends (serve's and the benchmark's connections), each
    /// auxiliary process by its title (walwriter, checkpointer, autovacuum launcher…), autovacuum workers alive
    /// now, and "ended" (children the postmaster has reaped: mostly autovacuum workers, and closed connections).
    /// </summary>
    public IReadOnlyDictionary<string, TimeSpan> ServerCpuByProcess()
    {
        var kinds = new Dictionary<string, TimeSpan>();
        if (_cluster is null)
        {
            return kinds;
        }

        var postmaster = int.Parse(File.ReadLines(Path.Combine(_cluster.DataDirectory, "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);
        var own = ProcStat.Read(postmaster);
        kinds["postmaster"] = own.Cpu;
        kinds["ended"] = own.ReapedChildrenCpu;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == postmaster)
            {
                continue;
            }

            try
            {
                var child = ProcStat.Read(pid);
                if (child.ParentId == postmaster)
                {
                    var kind = ProcessKind(File.ReadAllText(Path.Combine(dir, "cmdline")));
                    kinds[kind] = kinds.GetValueOrDefault(kind) + child.Cpu;
                }
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
        }

        return kinds;
    }

    // PostgreSQL sets each child's title: "postgres: walwriter", "postgres: autovacuum worker monal",
    // "postgres: monal monal 127.0.0.1(40000) idle" (a client backend: user, database, client, state).
    private static string ProcessKind(string cmdline)
    {
        var title = cmdline.Replace('\0', ' ').Trim();
        title = title.StartsWith("postgres: ", StringComparison.Ordinal) ? title["postgres: ".Length..] : title;
        string[] auxiliary = ["autovacuum worker", "autovacuum launcher", "walwriter", "checkpointer", "background writer", "logger", "logical replication launcher", "stats collector"];
        return auxiliary.FirstOrDefault(a => title.StartsWith(a, StringComparison.Ordinal)) ?? "client backends";
    }

    public async Task<string> ServerVersionAsync()
    {
        await using var cmd = DataSource.CreateCommand("select version(), current_setting('synchronous_commit')");
        await using var reader = await cmd.ExecuteReaderAsync();
        await reader.ReadAsync();
        return $"{reader.GetString(0).Split(" on ")[0]}, synchronous_commit={reader.GetString(1)}";
    }

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
            try
            {
                Directory.Delete(_folder, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
        }
    }
}
