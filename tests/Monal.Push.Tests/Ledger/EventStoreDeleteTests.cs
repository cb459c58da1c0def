using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Tests.Fixtures;
using Npgsql;
using static Monal.Push.Tests.Ledger.EventStoreAppendTests;

namespace Monal.Push.Tests.Ledger;

[Trait("Category", "Postgres")]
public sealed class EventStoreDeleteTests
{
    private sealed class MarkerHook(List<Guid> deleted) : IStreamDeletionHook
    {
        public void OnDelete(NpgsqlBatch batch, Guid streamId) => deleted.Add(streamId);
    }

    [Fact]
    public async Task DeleteStreamAsync_Should_RemoveEventsKeyAndStream_When_StreamExists()
    {
        var hooked = new List<Guid>();
        await using var store = await TestLedger.StoreAsync(hooks: [new MarkerHook(hooked)]);
        var dataSource = await TestDatabase.DataSourceAsync();
        var keys = new DataKeys(dataSource, TestLedger.MasterKey, TimeProvider.System);
        var id = Guid.CreateVersion7();
        var other = Guid.CreateVersion7();
        var sealedToken = await keys.EncryptAsync(id, "a1b2c3");
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id), Requested(id), Requested(id)]);
        await store.AppendAsync(other, "device", ExpectedVersion.Any, [Registered(other), Requested(other)]);

        Assert.Equal(3, await store.DeleteStreamAsync(id));

        Assert.Empty(await store.ReadStreamAsync(id));
        Assert.Equal(0, await store.GetStreamVersionAsync(id));
        Assert.Equal(0L, await Scalar(dataSource, "select count(*) from data_keys where device_id = $1", id));
        keys.Forget(id);
        await Assert.ThrowsAsync<DataKeyShreddedException>(() => keys.DecryptAsync(id, sealedToken));
        Assert.Equal(2, (await store.ReadStreamAsync(other)).Count);
        Assert.Equal([id], hooked);
        Assert.Equal(0, await store.DeleteStreamAsync(id));
    }

    [Fact]
    public async Task PurgePushEventsAsync_Should_DropOldDaysAndTrimTheBoundaryDay_When_EventsOutliveTheWindow()
    {
                var start = new DateTimeOffset(2040, 1, 1, 6, 0, 0, TimeSpan.Zero);
        var clock = new ManualClock(start);
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = TestLedger.Store(dataSource, clock: clock);
        var id = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)]);
        foreach (var day in new[] { 0, 1, 5, 5, 10, 15 })
        {
            clock.Set(start.AddDays(day));
            await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]);
        }

        // Cutoff on day 5 at 12:00: days 0 and 1 are whole partitions to drop; day 5 at 06:00 is in the boundary day.
        var cutoff = start.AddDays(5).AddHours(6);
        var dry = await store.PurgePushEventsAsync(cutoff, batchSize: 1, dryRun: true);
        Assert.Equal(new PurgeResult(2, 4), dry);
        Assert.Equal(7, (await store.ReadStreamAsync(id)).Count);

        var result = await store.PurgePushEventsAsync(cutoff, batchSize: 1, dryRun: false);

        Assert.Equal(new PurgeResult(2, 4), result);
        var left = await store.ReadStreamAsync(id);
        Assert.Equal(["device_registered.v1", "push_requested.v1", "push_requested.v1"], left.Select(e => e.Type));
        Assert.All(left.Skip(1), e => Assert.True(e.Timestamp >= cutoff));
        Assert.IsType<DBNull>(await Scalar(dataSource, "select to_regclass('push_events_20400101')::text"));
        Assert.Equal(0L, await Scalar(dataSource, "select count(*) from push_events where \"timestamp\" < $1", cutoff));
    }

    [Fact]
    public async Task AppendAsync_Should_RecreateAPartition_When_APurgeDroppedItMeanwhile()
    {
        var clock = new ManualClock(new DateTimeOffset(2041, 6, 1, 10, 0, 0, TimeSpan.Zero));
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = TestLedger.Store(dataSource, clock: clock);
        await using var purger = TestLedger.Store(dataSource, clock: clock);
        var id = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]);
        await purger.PurgePushEventsAsync(clock.GetUtcNow().AddDays(2), 1000, dryRun: false);

        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]);

        Assert.Single(await store.ReadStreamAsync(id));
    }
}
