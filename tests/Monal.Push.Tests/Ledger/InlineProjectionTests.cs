using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Tests.Fixtures;
using Npgsql;
using static Monal.Push.Tests.Ledger.EventStoreAppendTests;

namespace Monal.Push.Tests.Ledger;

[Trait("Category", "Postgres")]
public sealed class InlineProjectionTests
{
    /// <summary>Counts registrations per stream in a table of its own, and refuses pushes to one "blocked" stream.</summary>
    private sealed class CountingProjection(string table, Guid blocked) : IInlineProjection
    {
        public List<object> Committed { get; } = [];

        public AfterCommit? Project(NpgsqlBatch batch, IReadOnlyList<PendingEvent> events)
        {
            foreach (var e in events)
            {
                if (e.Data is DeviceRegistered)
                {
                    var c = new NpgsqlBatchCommand($"insert into {table} (id, n) values ($1, 1) on conflict (id) do update set n = {table}.n + 1");
                    c.Parameters.Add(new() { Value = e.StreamId });
                    batch.BatchCommands.Add(c);
                }
                else if (e.Data is PushRequested && e.StreamId == blocked)
                {
                    batch.BatchCommands.Add(new NpgsqlBatchCommand(
                        "do $$ begin raise exception 'blocked' using errcode = 'MPG01', constraint = 'device_not_active'; end $$"));
                }
            }

            var seen = events.Select(e => e.Data).ToList();
            return () =>
            {
                lock (Committed)
                {
                    Committed.AddRange(seen);
                }
            };
        }
    }

    private static async Task<string> CreateTableAsync()
    {
        var table = "inline_" + Guid.NewGuid().ToString("N")[..10];
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var cmd = dataSource.CreateCommand($"create table {table} (id uuid primary key, n int not null)");
        await cmd.ExecuteNonQueryAsync();
        return table;
    }

    [Fact]
    public async Task AppendAsync_Should_UpdateTheReadModelInTheSameCommit_When_AnInlineProjectionIsRegistered()
    {
        var table = await CreateTableAsync();
        await using var store = await TestLedger.StoreAsync(inline: [new CountingProjection(table, Guid.Empty)]);
        var id = Guid.CreateVersion7();

        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)]);
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)]);

        Assert.Equal(2, await Scalar(await TestDatabase.DataSourceAsync(), $"select n from {table} where id = $1", id));
    }

    [Fact]
    public async Task AppendAsync_Should_FailOnlyTheRefusedCaller_When_AProjectionRefusesInsideABatch()
    {
        var table = await CreateTableAsync();
        var blocked = Guid.CreateVersion7();
        await using var store = await TestLedger.StoreAsync(inline: [new CountingProjection(table, blocked)]);
        var others = Enumerable.Range(0, 30).Select(_ => Guid.CreateVersion7()).ToArray();

        var tasks = others.Select(o => store.AppendAsync(o, "device", ExpectedVersion.Any, [Registered(o), Requested(o)]))
            .Append(store.AppendAsync(blocked, "device", ExpectedVersion.Any, [Registered(blocked), Requested(blocked)]))
            .ToArray();
        var outcome = await Task.WhenAll(tasks.Select(async t =>
        {
            try
            {
                await t;
                return null;
            }
            catch (AppendRejectedException ex)
            {
                return ex.Reason;
            }
        }));

        Assert.Equal("device_not_active", outcome[^1]);
        Assert.All(outcome[..^1], Assert.Null);
        Assert.Empty(await store.ReadStreamAsync(blocked));
        var dataSource = await TestDatabase.DataSourceAsync();
        Assert.Equal(0L, await Scalar(dataSource, $"select count(*) from {table} where id = $1", blocked));
        foreach (var o in others)
        {
            Assert.Equal(2, (await store.ReadStreamAsync(o)).Count);
        }
    }

    [Fact]
    public async Task AppendAsync_Should_RunTheProjectionsAfterCommitBeforeTheCallerResumes_When_TheBatchCommits()
    {
        var table = await CreateTableAsync();
        var blocked = Guid.CreateVersion7();
        var projection = new CountingProjection(table, blocked);
        await using var store = await TestLedger.StoreAsync(inline: [projection]);
        var id = Guid.CreateVersion7();
        var push = Requested(id);

        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id), push]);
        await Assert.ThrowsAsync<AppendRejectedException>(
            () => store.AppendAsync(blocked, "device", ExpectedVersion.Any, [Registered(blocked), Requested(blocked)]));

        lock (projection.Committed)
        {
            Assert.Equal([Registered(id), push], projection.Committed.Where(e => DeviceOf(e) == id));
            Assert.DoesNotContain(projection.Committed, e => DeviceOf(e) == blocked);
        }
    }

    private static Guid? DeviceOf(object e) => e switch
    {
        DeviceRegistered r => r.DeviceId,
        PushRequested p => p.DeviceId,
        _ => null,
    };
}
