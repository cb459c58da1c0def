using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Schema;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.Tests.Ledger;

[Trait("Category", "Postgres")]
public sealed class SchemaMigratorTests
{
    [Fact]
    public async Task MigrateAsync_Should_CreateTheSchemaOnce_When_RunTwice()
    {
        await using var dataSource = NpgsqlDataSource.Create(await TestDatabase.CreateEmptyDatabaseAsync());
        var migrator = new SchemaMigrator(dataSource, NullLogger<SchemaMigrator>.Instance);
        var all = MigrationSource.Embedded();

        var first = await migrator.MigrateAsync(all);
        var second = await migrator.MigrateAsync(all);

        Assert.Equal(all.Select(m => m.Name), first);
        Assert.Empty(second);
        Assert.Empty(await migrator.PendingAsync(all));
        foreach (var table in new[] { "streams", "events", "push_events", "data_keys", "schema_migrations" })
        {
            Assert.Equal(table, await EventStoreAppendTests.Scalar(dataSource, "select to_regclass($1)::text", table));
        }
    }

    [Fact]
    public async Task MigrateAsync_Should_ApplyEachFileOnce_When_TwoMigratorsStartTogether()
    {
        await using var dataSource = NpgsqlDataSource.Create(await TestDatabase.CreateEmptyDatabaseAsync());
        var all = MigrationSource.Embedded();

        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            new SchemaMigrator(dataSource, NullLogger<SchemaMigrator>.Instance).MigrateAsync(all)));

        Assert.Equal(all.Count, results.Sum(r => r.Count));
        Assert.Equal((long)all.Count, await EventStoreAppendTests.Scalar(dataSource, "select count(*) from schema_migrations"));
    }

    [Fact]
    public async Task MigrateAsync_Should_RefuseToRun_When_AnAppliedFileWasEdited()
    {
        await using var dataSource = NpgsqlDataSource.Create(await TestDatabase.CreateEmptyDatabaseAsync());
        var folder = Directory.CreateTempSubdirectory("monal-migrations-");
        try
        {
            foreach (var m in MigrationSource.Embedded())
            {
                await File.WriteAllTextAsync(Path.Combine(folder.FullName, m.Name), m.Sql);
            }

            var migrator = new SchemaMigrator(dataSource, NullLogger<SchemaMigrator>.Instance);
            await migrator.MigrateAsync(MigrationSource.FromDirectory(folder.FullName));
            var victim = Path.Combine(folder.FullName, "0001_event_store.sql");
            await File.AppendAllTextAsync(victim, "\n-- a quiet edit\n");

            var ex = await Assert.ThrowsAsync<MigrationChecksumMismatchException>(
                () => migrator.MigrateAsync(MigrationSource.FromDirectory(folder.FullName)));

            Assert.Equal("0001_event_store.sql", ex.File);
            Assert.Contains("forward-only", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Embedded_Should_MatchTheMigrationsFolder_When_Built()
    {
        var folder = Path.Combine(RepositoryRoot(), "migrations");
        var files = MigrationSource.FromDirectory(folder);

        Assert.Equal(files.Select(f => (f.Name, f.Checksum)), MigrationSource.Embedded().Select(m => (m.Name, m.Checksum)));
        Assert.All(files, f => Assert.Matches(@"^\d{4}_[a-z0-9_]+\.sql$", f.Name));
    }

    internal static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Monal.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Monal.sln not found above the test binaries.");
    }
}
