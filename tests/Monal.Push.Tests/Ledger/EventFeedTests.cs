using Monal.Push.Ledger.EventStore;
using Monal.Push.Tests.Fixtures;
using Npgsql;
using static Monal.Push.Tests.Ledger.EventStoreAppendTests;

namespace Monal.Push.Tests.Ledger;

[Trait("Category", "Postgres")]
public sealed class EventFeedTests
{
    [Fact]
    public async Task ReadNextAsync_Should_WaitForALateCommit_When_ALowerPositionIsStillInFlight()
    {
        await using var store = await TestLedger.StoreAsync(groupCommit: false);
        var dataSource = await TestDatabase.DataSourceAsync();
        var feed = new EventFeed(store);
        var seen = new List<RecordedEvent>();
        var before = Guid.CreateVersion7();
        var checkpoint = await store.GetLastSequenceAsync();
        await store.AppendAsync(before, "device", ExpectedVersion.Any, [Registered(before)]);

        // Read up to the first event while nothing of ours is in flight: a gap other tests leave below it (a
        // refused append's burned position) is proven dead only once every transaction open now has ended.
        for (var i = 0; i < 400 && !seen.Any(e => e.StreamId == before); i++)
        {
            seen.AddRange(await feed.ReadNextAsync(seen.Count > 0 ? seen[^1].Sequence : checkpoint, 100));
            await Task.Delay(25);
        }

        Assert.Contains(seen, e => e.StreamId == before);

        // A slow writer draws a position and holds its transaction open, as an append would (xid first).
        await using var slow = await dataSource.OpenConnectionAsync();
        await using var tx = await slow.BeginTransactionAsync();
        var late = Guid.CreateVersion7();
        await Exec(slow, tx, "select pg_current_xact_id()");
        await Exec(slow, tx, """
            insert into events (stream_id, version, type, data, "timestamp")
            values ($1, 1, 'device_unregistered.v1', jsonb_build_object('device_id', $1::text, 'unregistered_at', now()), now())
            """, late);

        var after = Guid.CreateVersion7();
        await store.AppendAsync(after, "device", ExpectedVersion.Any, [Registered(after)]);

        for (var i = 0; i < 5; i++)
        {
            seen.AddRange(await feed.ReadNextAsync(seen[^1].Sequence, 100));
            await Task.Delay(20);
        }

        // The event after the in-flight position must wait for it, not be skipped past it.
        Assert.Equal([before], seen.Select(e => e.StreamId).Where(s => s == before || s == after || s == late));

        await tx.CommitAsync();
        for (var i = 0; i < 400 && !seen.Any(e => e.StreamId == after); i++)
        {
            seen.AddRange(await feed.ReadNextAsync(seen[^1].Sequence, 100));
            await Task.Delay(25); // later gaps (other tests' refused appends) wait for their proof too
        }

        Assert.Equal([before, late, after], seen.Select(e => e.StreamId).Where(s => s == before || s == after || s == late));
    }

    [Fact]
    public async Task ReadNextAsync_Should_SkipAGap_When_ItsTransactionRolledBack()
    {
        await using var store = await TestLedger.StoreAsync(groupCommit: false);
        var dataSource = await TestDatabase.DataSourceAsync();
        var checkpoint = await store.GetLastSequenceAsync();
        var before = Guid.CreateVersion7();
        await store.AppendAsync(before, "device", ExpectedVersion.Any, [Registered(before)]);

        await using (var conn = await dataSource.OpenConnectionAsync())
        await using (var tx = await conn.BeginTransactionAsync())
        {
            var burned = Guid.CreateVersion7();
            await Exec(conn, tx, "select pg_current_xact_id()");
            await Exec(conn, tx, """
                insert into events (stream_id, version, type, data, "timestamp")
                values ($1, 1, 'device_unregistered.v1', '{}', now())
                """, burned);
            await tx.RollbackAsync();
        }

        var after = Guid.CreateVersion7();
        await store.AppendAsync(after, "device", ExpectedVersion.Any, [Registered(after)]);

        var feed = new EventFeed(store);
        var seen = new List<RecordedEvent>();
        for (var i = 0; i < 200 && !seen.Any(e => e.StreamId == after); i++)
        {
            seen.AddRange(await feed.ReadNextAsync(seen.Count > 0 ? seen[^1].Sequence : checkpoint, 100));
            await Task.Delay(25); // a proof waits for transactions running elsewhere (other tests) to end
        }

        Assert.Contains(seen, e => e.StreamId == before);
        Assert.Contains(seen, e => e.StreamId == after);
        Assert.True(seen.Zip(seen.Skip(1)).All(p => p.First.Sequence < p.Second.Sequence));
    }

    [Fact]
    public async Task ReadNextAsync_Should_PassDeletedEvents_When_AStreamWasErased()
    {
        await using var store = await TestLedger.StoreAsync(groupCommit: false);
        var checkpoint = await store.GetLastSequenceAsync();
        var erased = Guid.CreateVersion7();
        var kept = Guid.CreateVersion7();
        await store.AppendAsync(erased, "device", ExpectedVersion.Any, [Registered(erased), Requested(erased)]);
        await store.AppendAsync(kept, "device", ExpectedVersion.Any, [Registered(kept)]);
        Assert.Equal(2, await store.DeleteStreamAsync(erased));

        var feed = new EventFeed(store);
        var seen = new List<RecordedEvent>();
        for (var i = 0; i < 200 && !seen.Any(e => e.StreamId == kept); i++)
        {
            seen.AddRange(await feed.ReadNextAsync(seen.Count > 0 ? seen[^1].Sequence : checkpoint, 100));
            await Task.Delay(25);
        }

        Assert.DoesNotContain(seen, e => e.StreamId == erased);
        Assert.Contains(seen, e => e.StreamId == kept);
    }

    [Fact]
    public async Task WaitAsync_Should_WakeBeforeThePollInterval_When_AnEventIsAppended()
    {
        await using var store = await TestLedger.StoreAsync();
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var notifications = new EventNotifications(dataSource);
        await notifications.WaitAsync(TimeSpan.FromMilliseconds(500), CancellationToken.None); // starts listening

        var wait = notifications.WaitAsync(TimeSpan.FromMinutes(5), CancellationToken.None);
        var id = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)]);

        var finished = await Task.WhenAny(wait, Task.Delay(TimeSpan.FromSeconds(30)));
        Assert.Same(wait, finished);
    }

    private static async Task Exec(NpgsqlConnection c, NpgsqlTransaction tx, string sql, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, c, tx);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        await cmd.ExecuteNonQueryAsync();
    }
}
