using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Embedded;
using Npgsql;

namespace Monal.Push.Tests.Ledger;

/// <summary>
/// serve on the embedded cluster (the quick start) gets the same connection budget as on any other database: the
/// cluster's connection string leaves Maximum Pool Size to ConnectionBudget (25 connections measured far cheaper for
/// PostgreSQL than a larger pool on two cores).
/// </summary>
[Trait("Category", "Postgres")]
public sealed class EmbeddedPostgresBudgetTests
{
    [Fact]
    public async Task ConnectionString_Should_LeaveThePoolToServesBudget_When_ServeRunsOnTheEmbeddedCluster()
    {
        var folder = Path.Combine(Path.GetTempPath(), "monal-test-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            await using var cluster = await EmbeddedPostgres.StartAsync(folder, NullLogger.Instance);
            var connectionString = cluster.ConnectionString();
            var builder = new NpgsqlDataSourceBuilder(connectionString);

            ConnectionBudget.Apply(builder, connectionString);

            Assert.Equal(ConnectionBudget.DefaultMaxPoolSize, builder.ConnectionStringBuilder.MaxPoolSize);
            await using var dataSource = builder.Build();
            await using var connection = await dataSource.OpenConnectionAsync();
            await using var count = new NpgsqlCommand("select count(*) from pg_stat_activity where application_name = $1", connection);
            count.Parameters.Add(new() { Value = ConnectionBudget.ApplicationName });
            Assert.Equal(1L, (long)(await count.ExecuteScalarAsync())!);
        }
        finally
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: the test run's sweep removes a folder left behind.
            }
        }
    }
}
