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

    public static async Task<BenchDatabase> StartAsync(bool migrate = true)
    {
        var folder = Path.Combine(Path.GetTempPath(), "monal-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var external = Environment.GetEnvironmentVariable("MONAL_BENCH_DB");
        EmbeddedPostgres? cluster = null;
        string cs;
        if (string.IsNullOrEmpty(external))
        {
            cluster = await EmbeddedPostgres.StartAsync(folder, NullLogger.Instance);
            cs = new NpgsqlConnectionStringBuilder(cluster.ConnectionString()) { MaxPoolSize = 100 }.ConnectionString;
        }
        else
        {
            cs = external;
        }

        var builder = new NpgsqlDataSourceBuilder(cs);
        LedgerDataSource.PrepareStatements(builder, cs);
        var dataSource = builder.Build();
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
    public TimeSpan ServerCpu()
    {
        if (_cluster is null)
        {
            return TimeSpan.Zero;
        }

        var postmaster = int.Parse(File.ReadLines(Path.Combine(_cluster.DataDirectory, "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);
        var own = ProcStat.Read(postmaster);
        var total = own.Cpu + own.ReapedChildrenCpu;
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
                    total += child.Cpu;
                }
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
        }

        return total;
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
