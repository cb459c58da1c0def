using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Ledger.Embedded;
using Monal.Push.Ledger.Schema;
using Npgsql;

namespace Monal.Push.Tests.Fixtures;

/// <summary>
/// One private PostgreSQL cluster per test run, started with the same embedded code `serve` uses (or the server
/// named by MONAL_TEST_DB), and one database per run with the migrations applied. Tests isolate themselves with
/// fresh stream ids, not truncation. Everything is dropped when the test process exits.
/// </summary>
public static class TestDatabase
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static EmbeddedPostgres? _cluster;
    private static string? _folder;
    private static string? _connectionString;
    private static NpgsqlDataSource? _dataSource;
    private static readonly List<string> Databases = [];

    /// <summary>The run's migrated database.</summary>
    public static async Task<NpgsqlDataSource> DataSourceAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_dataSource is null)
            {
                var name = await CreateDatabaseCoreAsync();
                _connectionString = ConnectionString(name);
                _dataSource = NpgsqlDataSource.Create(_connectionString);
                var migrator = new SchemaMigrator(_dataSource, NullLogger<SchemaMigrator>.Instance);
                await migrator.MigrateAsync(MigrationSource.Embedded());
            }

            return _dataSource;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>The connection string of the run's migrated database.</summary>
    public static async Task<string> ConnectionStringAsync()
    {
        await DataSourceAsync();
        return _connectionString!;
    }

    /// <summary>
    /// A database of its own with the migrations applied, for tests whose effect is global (a purge of every
    /// device's old events) and would disturb tests running beside them.
    /// </summary>
    public static async Task<NpgsqlDataSource> IsolatedDataSourceAsync()
    {
        var dataSource = NpgsqlDataSource.Create(await CreateEmptyDatabaseAsync());
        await new SchemaMigrator(dataSource, NullLogger<SchemaMigrator>.Instance).MigrateAsync(MigrationSource.Embedded());
        return dataSource;
    }

    /// <summary>A fresh, empty database (for migration tests); dropped at the end of the run.</summary>
    public static async Task<string> CreateEmptyDatabaseAsync()
    {
        await Gate.WaitAsync();
        try
        {
            return ConnectionString(await CreateDatabaseCoreAsync());
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>
    /// A cluster of the test's own, in a folder of its own (watched like the run's: stopped and deleted when the test
    /// process ends), for tests that restart or stop PostgreSQL: the run's cluster is shared by tests running in
    /// parallel. Needs the PostgreSQL binaries even when MONAL_TEST_DB is set.
    /// </summary>
    public static async Task<(EmbeddedPostgres Cluster, string Folder)> PrivateClusterAsync()
    {
        var folder = Path.Combine(Path.GetTempPath(), "monal-test-" + Guid.NewGuid().ToString("N")[..8]);
        var cluster = await EmbeddedPostgres.StartAsync(folder, NullLogger.Instance);
        StartWatchdog(folder, cluster.DataDirectory);
        return (cluster, folder);
    }

    private static async Task<string> CreateDatabaseCoreAsync()
    {
        var name = "monal_test_" + Guid.NewGuid().ToString("N")[..12];
        var external = Environment.GetEnvironmentVariable("MONAL_TEST_DB");
        if (!string.IsNullOrEmpty(external))
        {
            await using var admin = new NpgsqlConnection(external);
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"create database \"{name}\"", admin);
            await create.ExecuteNonQueryAsync();
        }
        else
        {
            if (_cluster is null)
            {
                SweepLeftovers();
                _folder = Path.Combine(Path.GetTempPath(), "monal-test-" + Guid.NewGuid().ToString("N")[..8]);
                _cluster = await EmbeddedPostgres.StartAsync(_folder, NullLogger.Instance);
                StartWatchdog(_folder, _cluster.DataDirectory);
                AppDomain.CurrentDomain.ProcessExit += (_, _) => Cleanup();
            }

            await _cluster.CreateDatabaseAsync(name);
        }

        Databases.Add(name);
        return name;
    }

    private static string ConnectionString(string database)
    {
        var external = Environment.GetEnvironmentVariable("MONAL_TEST_DB");
        var builder = new NpgsqlConnectionStringBuilder(string.IsNullOrEmpty(external) ? _cluster!.ConnectionString() : external)
        {
            Database = database,
        };
        if (string.IsNullOrEmpty(external))
        {
            // The pool the tests have always had; serve itself applies its own budget (ConnectionBudget).
            builder.MaxPoolSize = 64;
        }

        return builder.ConnectionString;
    }

    /// <summary>
    /// Removes the clusters of earlier runs whose cleanup did not finish (the test host can be ended before its
    /// ProcessExit handler has deleted a gigabyte of cluster): folders older than ten minutes with no live postmaster.
    /// A younger folder may belong to a run starting in parallel (the solution's test projects run at once).
    /// </summary>
    private static void SweepLeftovers()
    {
        foreach (var dir in Directory.EnumerateDirectories(Path.GetTempPath(), "monal-test-*"))
        {
            try
            {
                if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(dir) < TimeSpan.FromMinutes(10))
                {
                    continue;
                }

                var pidFile = Directory.EnumerateFiles(dir, "postmaster.pid", SearchOption.AllDirectories).FirstOrDefault();
                if (pidFile is not null && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), out var pid) && Directory.Exists($"/proc/{pid}"))
                {
                    continue;
                }

                Directory.Delete(dir, recursive: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Someone else's, or in use: leave it.
            }
        }
    }

    /// <summary>
    /// The test runner ends the test host shortly after the last test, in practice while the ProcessExit handler is
    /// still waiting for pg_ctl, so that handler never gets to delete the folder. A detached shell waits for this
    /// process to end, then stops the cluster if it still runs (SIGQUIT: immediate shutdown; the data is thrown away)
    /// and deletes the folder.
    /// </summary>
    private static void StartWatchdog(string folder, string dataDirectory)
    {
        var script = $$"""
            exec </dev/null >/dev/null 2>&1
            while kill -0 {{Environment.ProcessId}}; do sleep 0.2; done
            pid=$(head -n 1 '{{dataDirectory}}/postmaster.pid')
            if [ -n "$pid" ]; then
                kill -QUIT "$pid"
                for _ in $(seq 1 100); do kill -0 "$pid" || break; sleep 0.1; done
            fi
            rm -rf '{{folder}}'
            """;
        try
        {
            var info = new System.Diagnostics.ProcessStartInfo("setsid", ["sh", "-c", script]) { UseShellExecute = false };
            using var _ = System.Diagnostics.Process.Start(info);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No setsid: the next run's SweepLeftovers removes the folder instead.
        }
    }

    private static void Cleanup()
    {
        _dataSource?.Dispose();
        NpgsqlConnection.ClearAllPools();
        var external = Environment.GetEnvironmentVariable("MONAL_TEST_DB");
        if (!string.IsNullOrEmpty(external))
        {
            try
            {
                using var admin = new NpgsqlConnection(external);
                admin.Open();
                foreach (var db in Databases)
                {
                    using var drop = new NpgsqlCommand($"drop database if exists \"{db}\" with (force)", admin);
                    drop.ExecuteNonQuery();
                }
            }
            catch (NpgsqlException)
            {
                // Best effort: the server may already be gone.
            }

            return;
        }

        if (_cluster is not null)
        {
            _cluster.DisposeAsync().AsTask().GetAwaiter().GetResult();
            try
            {
                Directory.Delete(_folder!, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
            catch (UnauthorizedAccessException)
            {
                // Best effort.
            }
        }
    }
}
