using Monal.Push.Ledger;
using Monal.Push.Tests.Fixtures;
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
        var (cluster, folder) = await TestDatabase.PrivateClusterAsync();
        try
        {
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
            await cluster.DisposeAsync();
            Directory.Delete(folder, recursive: true);
        }
    }
}
