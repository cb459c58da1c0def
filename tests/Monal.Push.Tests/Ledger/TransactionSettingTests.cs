using Monal.Push.Ledger;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Tests.Fixtures;
using Npgsql;
using static Monal.Push.Tests.Ledger.EventStoreAppendTests;

namespace Monal.Push.Tests.Ledger;

/// <summary>
/// Settings for one batch sent without BEGIN (an implicit transaction): the append's generic plans, the asynchronous
/// commits of the NOTIFY and of a new data key, and the projection daemon's JIT off for a range. There SET LOCAL holds
/// too, but raises a warning at every execution; these must hold, raise nothing and leave nothing behind on the pooled
/// connection.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class TransactionSettingTests
{
    public static TheoryData<string, string, string> Settings() => new()
    {
        { nameof(TransactionSetting.GenericPlans), "plan_cache_mode", "force_generic_plan" },
        { nameof(TransactionSetting.AsynchronousCommit), "synchronous_commit", "off" },
        { nameof(TransactionSetting.NoJit), "jit", "off" },
    };

    private static NpgsqlBatchCommand Of(string which) => which switch
    {
        nameof(TransactionSetting.GenericPlans) => TransactionSetting.GenericPlans(),
        nameof(TransactionSetting.NoJit) => TransactionSetting.NoJit(),
        _ => TransactionSetting.AsynchronousCommit(),
    };

    [Theory]
    [MemberData(nameof(Settings))]
    public async Task Command_Should_HoldForTheRestOfItsBatchWithoutAWarning_When_TheBatchHasNoTransaction(string which, string name, string value)
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var connection = await dataSource.OpenConnectionAsync();
        var notices = new List<string>();
        connection.Notice += (_, e) => notices.Add(e.Notice.MessageText);
        var before = await ShowAsync(connection, name);
        Assert.NotEqual(value, before);

        var seen = new List<string>();
        await using (var batch = new NpgsqlBatch(connection))
        {
            batch.BatchCommands.Add(Of(which));
            batch.BatchCommands.Add(new NpgsqlBatchCommand($"select 'then ' || current_setting('{name}')"));
            await using var reader = await batch.ExecuteReaderAsync();
            do
            {
                while (await reader.ReadAsync())
                {
                    seen.Add(reader.GetString(0));
                }
            }
            while (await reader.NextResultAsync());
        }

        Assert.Equal("then " + value, seen[^1]);
        Assert.Empty(notices);
        Assert.Equal(before, await ShowAsync(connection, name));
    }

    [Fact]
    public async Task AppendAsync_Should_RunItsStatementsWithGenericPlans_When_InlineProjectionsJoinTheBatch()
    {
        var table = "plans_" + Guid.NewGuid().ToString("N")[..10];
        var dataSource = await TestDatabase.DataSourceAsync();
        await using (var create = dataSource.CreateCommand($"create table {table} (mode text not null)"))
        {
            await create.ExecuteNonQueryAsync();
        }

        await using var store = await TestLedger.StoreAsync(inline: [new SettingProbe(table)]);
        var id = Guid.CreateVersion7();

        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)]);

        await using var read = dataSource.CreateCommand($"select mode from {table}");
        Assert.Equal("force_generic_plan", (string?)await read.ExecuteScalarAsync());
        await using var connection = await dataSource.OpenConnectionAsync();
        Assert.Equal("auto", await ShowAsync(connection, "plan_cache_mode"));
    }

    /// <summary>Records, from inside the append's batch, the plan cache mode its statements run with.</summary>
    private sealed class SettingProbe(string table) : IInlineProjection
    {
        public AfterCommit? Project(NpgsqlBatch batch, IReadOnlyList<PendingEvent> events)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand($"insert into {table} values (current_setting('plan_cache_mode'))"));
            return null;
        }
    }

    private static async Task<string> ShowAsync(NpgsqlConnection connection, string name)
    {
        await using var show = new NpgsqlCommand($"select current_setting('{name}')", connection);
        return (string)(await show.ExecuteScalarAsync())!;
    }
}
