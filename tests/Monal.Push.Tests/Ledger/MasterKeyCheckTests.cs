using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Cli.Hosting;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Schema;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.Tests.Ledger;

/// <summary>Issue 19: a node's master key is proven against the database before it starts; the connection budget.</summary>
[Trait("Category", "Postgres")]
public sealed class MasterKeyCheckTests
{
    private static MasterKey NewKey() => new(RandomNumberGenerator.GetBytes(32));

    private static MasterKeyCheck Check(NpgsqlDataSource db, MasterKey key) => new(db, key, NullLogger<MasterKeyCheck>.Instance);

    private static async Task<long> StoredChecksAsync(NpgsqlDataSource db)
    {
        await using var cmd = db.CreateCommand("select count(*) from master_key_check");
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task VerifyAsync_Should_RecordTheFirstKeyAndRefuseAnother_When_NodesShareADatabase()
    {
        await using var db = await TestDatabase.IsolatedDataSourceAsync();
        var key = NewKey();

        Assert.Equal(MasterKeyCheck.Outcome.Recorded, await Check(db, key).VerifyAsync());
        Assert.Equal(MasterKeyCheck.Outcome.Matched, await Check(db, key).VerifyAsync());
        var refused = await Assert.ThrowsAsync<MasterKeyException>(() => Check(db, NewKey()).VerifyAsync());

        Assert.Contains("is not the key of this database", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Every node on one database must use the same master key", refused.Message, StringComparison.Ordinal);
        Assert.Equal(1L, await StoredChecksAsync(db));
        await using var cmd = db.CreateCommand("select check_value from master_key_check");
        var stored = (byte[])(await cmd.ExecuteScalarAsync())!;
        Assert.Equal(key.CheckValue(), stored);
        Assert.Equal(32, stored.Length);
    }

    [Fact]
    public async Task VerifyAsync_Should_ProveTheKeyOnStoredDataKeys_When_TheDatabaseIsOlderThanTheCheckValue()
    {
        await using var db = await TestDatabase.IsolatedDataSourceAsync();
        var first = NewKey();
        await new DataKeys(db, first, TimeProvider.System).EncryptAsync(Guid.CreateVersion7(), "a token");

        var refused = await Assert.ThrowsAsync<MasterKeyException>(() => Check(db, NewKey()).VerifyAsync());

        Assert.Contains("wrapped by another master key", refused.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await StoredChecksAsync(db));
        Assert.Equal(MasterKeyCheck.Outcome.Recorded, await Check(db, first).VerifyAsync());
    }

    [Fact]
    public void MasterKey_Should_NameTheFileAndTheFormat_When_TheKeyFileIsNotAKey()
    {
        var folder = Directory.CreateTempSubdirectory("monal-key-").FullName;
        try
        {
            var file = Path.Combine(folder, "master.key");
            File.WriteAllText(file, "not base64 at all");

            var refused = Assert.Throws<MasterKeyException>(() => new MasterKey(
                Options.Create(new LedgerOptions { MasterKeyFile = file }), Options.Create(new DataOptions { Path = folder })));

            Assert.Contains(file, refused.Message, StringComparison.Ordinal);
            Assert.Contains("base64 text of 32 random bytes", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> MonalPushAsync(params string[] arguments)
    {
        var data = Directory.CreateTempSubdirectory("monal-key-").FullName;
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in (string[])[Path.Combine(AppContext.BaseDirectory, "monal-push.dll"), .. arguments, "--Data:Path=" + data])
        {
            info.ArgumentList.Add(argument);
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            using var process = Process.Start(info)!;
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            return (process.ExitCode, await stdout, await stderr);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>A migrated database whose check value a key has recorded; returns that key as base64.</summary>
    private static async Task<(string ConnectionString, string Key)> RecordedDatabaseAsync()
    {
        var connectionString = await TestDatabase.CreateEmptyDatabaseAsync();
        await using var db = NpgsqlDataSource.Create(connectionString);
        await new SchemaMigrator(db, NullLogger<SchemaMigrator>.Instance).MigrateAsync(MigrationSource.Embedded());
        var key = RandomNumberGenerator.GetBytes(32);
        await Check(db, new MasterKey(key)).VerifyAsync();
        return (connectionString, Convert.ToBase64String(key));
    }

    [Fact]
    public async Task Migrate_Should_ExitWithTheFixOnStandardError_When_TheMasterKeyIsNotTheDatabases()
    {
        var (connectionString, _) = await RecordedDatabaseAsync();
        var wrong = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

        var (exitCode, stdout, stderr) = await MonalPushAsync("migrate", $"--ConnectionStrings:Ledger={connectionString}", $"--Ledger:MasterKey={wrong}");

        Assert.True(exitCode == 2, stderr);
        Assert.Contains("monal-push: The master key (Ledger:MasterKey) is not the key of this database", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", stderr, StringComparison.Ordinal);
        Assert.Equal("", stdout);
    }

    [Fact]
    public async Task Doctor_Should_ShowTheBudgetAndCompareTheKey_When_TheDatabaseHasACheckValue()
    {
        var (connectionString, key) = await RecordedDatabaseAsync();
        var budgeted = new NpgsqlConnectionStringBuilder(connectionString);
        budgeted.Remove("Maximum Pool Size");

        var matching = await MonalPushAsync("doctor", $"--ConnectionStrings:Ledger={budgeted}",
            "--Ledger:MasterKey=" + key);
        var other = await MonalPushAsync("doctor", $"--ConnectionStrings:Ledger={budgeted}",
            "--Ledger:MasterKey=" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));

        Assert.Contains("ok    database connections: this node opens at most 25 connections (Maximum Pool Size); PostgreSQL max_connections", matching.Stdout, StringComparison.Ordinal);
        Assert.Contains("ok    key      master key matches the database's key check value", matching.Stdout, StringComparison.Ordinal);
        Assert.Contains("FAIL  key      the master key (Ledger:MasterKey) is not this database's", other.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Host=h;Database=d", 25, "monal-push")]
    [InlineData("Host=h;Database=d;Maximum Pool Size=7;Application Name=mine", 7, "mine")]
    [InlineData("Host=h;Database=d;maximum pool size = 40", 40, "monal-push")]
    [InlineData("Host=h;Database=d;Minimum Pool Size=2", 25, "monal-push")]
    public void Apply_Should_SetTheDefaultBudgetOnly_When_TheConnectionStringSetsNone(string connectionString, int pool, string name)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);

        ConnectionBudget.Apply(builder, connectionString);

        Assert.Equal(pool, builder.ConnectionStringBuilder.MaxPoolSize);
        Assert.Equal(name, builder.ConnectionStringBuilder.ApplicationName);
    }

    [Fact]
    public async Task Start_Should_ExplainTheArithmetic_When_PostgreSqlRefusesAConnectionWithTooManyClients()
    {
        // A role limited to one connection, which the test holds: the host's first connection gets SQLSTATE 53300,
        // as a node does when the other nodes' pools have taken max_connections.
        var admin = await TestDatabase.DataSourceAsync();
        var role = "monal_budget_" + Guid.NewGuid().ToString("N")[..8];
        await using (var create = admin.CreateCommand($"create role {role} login password 'pw' connection limit 1"))
        {
            await create.ExecuteNonQueryAsync();
        }

        var limited = new NpgsqlConnectionStringBuilder(await TestDatabase.ConnectionStringAsync()) { Username = role, Password = "pw" };
        limited.Remove("Maximum Pool Size");
        var data = Directory.CreateTempSubdirectory("monal-budget-").FullName;
        try
        {
            await using var held = new NpgsqlConnection(limited.ConnectionString + ";Pooling=false");
            await held.OpenAsync();

            var refused = await Assert.ThrowsAsync<ConnectionBudgetException>(() => MonalHost.StartAsync(
                [$"--ConnectionStrings:Ledger={limited.ConnectionString}", "--Ledger:MasterKey=" + Convert.ToBase64String(new byte[32]), $"--Data:Path={data}"],
                HostRole.Admin, CancellationToken.None));

            Assert.Equal(PostgresErrorCodes.TooManyConnections, ((PostgresException)refused.InnerException!).SqlState);
            Assert.Contains("SQLSTATE 53300", refused.Message, StringComparison.Ordinal);
            Assert.Contains("25 here, so N nodes need N × 25", refused.Message, StringComparison.Ordinal);
            Assert.Contains("lower Maximum Pool Size", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
            await using var drop = admin.CreateCommand($"drop role if exists {role}");
            await drop.ExecuteNonQueryAsync();
        }
    }
}
