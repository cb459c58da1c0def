using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Projections.Devices;
using Monal.Push.Tests.Fixtures;
using static Monal.Push.Tests.Projections.ProjectionKit;

namespace Monal.Push.Tests.Projections;

[Trait("Category", "Postgres")]
public sealed class DeviceDirectoryTests
{
    [Fact]
    public async Task GetAsync_Should_ReturnTheDevice_When_ItIsRegisteredAndNullWhenUnknown()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var directory = Directory(dataSource);
        await using var store = Store(dataSource, directory);
        var id = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)]);

        var state = await directory.GetAsync(id);

        Assert.Equal(new DeviceState(id, DeviceMode.Registered, "monalProdiOS", "v1:AAAA", "hash", T0, null, null, null, null, null), state);
        Assert.True(state!.IsActive);
        Assert.Null(await directory.GetAsync(Guid.CreateVersion7()));
    }

    [Fact]
    public async Task GetAsync_Should_NeverServeACachedActive_When_ThisProcessInvalidatedTheDevice()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var directory = Directory(dataSource);
        await using var store = Store(dataSource, directory);
        var id = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)]);
        await WaitUntilAsync(async () => { await directory.GetAsync(id); return directory.IsListening; }, because: "LISTEN");
        Assert.True((await directory.GetAsync(id))!.IsActive);

        await store.AppendAsync(id, "device", ExpectedVersion.Any,
            [new TokenRejected(Guid.CreateVersion7(), id, "BadDeviceToken", T0.AddMinutes(1))]);

        // The inline projection evicted the entry before the commit, so the very next lookup reads the new row.
        Assert.False((await directory.GetAsync(id))!.IsActive);
    }

    [Fact]
    public async Task GetAsync_Should_StopServingActive_When_AnotherProcessInvalidatesOrErasesTheDevice()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        // Two stores are two processes: only A has the directory; its TTL (10 min) cannot be what evicts.
        await using var directory = Directory(dataSource);
        await using var processA = Store(dataSource, directory);
        await using var processB = Store(dataSource);
        var id = Guid.CreateVersion7();
        var erased = Guid.CreateVersion7();
        await processA.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)]);
        await processA.AppendAsync(erased, "device", ExpectedVersion.Any, [Registered(erased)]);
        await WaitUntilAsync(async () => { await directory.GetAsync(id); return directory.IsListening; }, because: "LISTEN");
        Assert.True((await directory.GetAsync(id))!.IsActive);
        Assert.True((await directory.GetAsync(erased))!.IsActive);

        await processB.AppendAsync(id, "device", ExpectedVersion.Any,
            [new TokenInvalidated(Guid.CreateVersion7(), id, "Unregistered", T0.AddMinutes(1), T0.AddMinutes(2))]);
        await processB.DeleteStreamAsync(erased);

        // The authority: whatever A's cache says at this instant, A's append of a push is refused.
        await Assert.ThrowsAsync<AppendRejectedException>(() => processA.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]));
        await Assert.ThrowsAsync<AppendRejectedException>(() => processA.AppendAsync(erased, "device", ExpectedVersion.Any, [Requested(erased)]));
        // And the notification reaches A's cache right after B's commits.
        await WaitUntilAsync(async () => (await directory.GetAsync(id))?.IsActive == false, TimeSpan.FromSeconds(5), "the invalidation");
        await WaitUntilAsync(async () => await directory.GetAsync(erased) is null, TimeSpan.FromSeconds(5), "the erasure");
        // Once seen, never active again.
        for (var i = 0; i < 20; i++)
        {
            Assert.False((await directory.GetAsync(id))!.IsActive);
            Assert.Null(await directory.GetAsync(erased));
        }
    }

    [Fact]
    public async Task GetAsync_Should_SeeAStatelessDeviceAtOnce_When_AnotherProcessCreatedItWithoutAnnouncingIt()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var directory = Directory(dataSource);
        await using var processA = Store(dataSource, directory);
        await using var processB = Store(dataSource);
        var stateless = Guid.CreateVersion7();
        var registered = Guid.CreateVersion7();
        await processA.AppendAsync(Guid.CreateVersion7(), "device", ExpectedVersion.Any, [Registered(Guid.CreateVersion7())]);
        await WaitUntilAsync(async () => { await directory.GetAsync(stateless); return directory.IsListening; }, because: "LISTEN");
        Assert.Null(await directory.GetAsync(stateless));

        // Who hears what the devices channel announces, from here on.
        await using var listener = await dataSource.OpenConnectionAsync();
        var heard = new List<string>();
        listener.Notification += (_, e) => { lock (heard) { heard.Add(e.Payload); } };
        await using (var listen = new Npgsql.NpgsqlCommand($"listen {DeviceDirectory.NotifyChannel}", listener))
        {
            await listen.ExecuteNonQueryAsync();
        }

        // B creates the stateless device with its first push, then registers a device (which is announced).
        await processB.AppendAsync(stateless, "device", ExpectedVersion.NoStream,
            [Registered(stateless) with { Mode = DeviceMode.Stateless, SecretHash = null }, Requested(stateless)]);
        await processB.AppendAsync(registered, "device", ExpectedVersion.NoStream, [Registered(registered)]);

        // A's "unknown" was not kept: the very next lookup finds the device, with no announcement to wait for.
        Assert.True((await directory.GetAsync(stateless))!.IsActive);
        // Notifications arrive in commit order: once the registration's is heard, the creation's would have been.
        await WaitUntilAsync(async () =>
        {
            await listener.WaitAsync(TimeSpan.FromMilliseconds(100));
            lock (heard)
            {
                return heard.Contains(registered.ToString());
            }
        }, TimeSpan.FromSeconds(10), "the registration's announcement");
        lock (heard)
        {
            Assert.DoesNotContain(stateless.ToString(), heard);
        }
    }

    [Fact]
    public async Task GetAsync_Should_ReadWhatChanged_When_AnExpiredEntryIsReloaded()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        var options = Options();
        options.DeviceCacheTtl = TimeSpan.FromMilliseconds(200);
        await using var directory = Directory(dataSource, options);
        await using var store = Store(dataSource, directory);
        var id = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)]);
        await WaitUntilAsync(async () => { await directory.GetAsync(id); return directory.IsListening; }, because: "LISTEN");
        var first = await directory.GetAsync(id);

        // Unchanged: the reload renews the entry and answers the same state.
        await Task.Delay(300);
        Assert.Equal(first, await directory.GetAsync(id));

        // Changed behind the cache's back (no announcement): once the entry expires, the reload must not renew it.
        await using (var change = dataSource.CreateCommand("update devices set encrypted_token = 'v1:BBBB', secret_hash = 'other' where device_id = $1"))
        {
            change.Parameters.Add(new() { Value = id });
            await change.ExecuteNonQueryAsync();
        }

        await Task.Delay(300);
        var changed = first! with { EncryptedToken = "v1:BBBB", SecretHash = "other" };
        Assert.Equal(changed, await directory.GetAsync(id));
        // And what the reload cached is the new state, not the renewed old one.
        Assert.Equal(changed, await directory.GetAsync(id));
    }

    [Fact]
    public async Task GetAsync_Should_AnswerEachLookupWithItsOwnDeviceInFewStatements_When_ManyMissAtOnce()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var directory = Directory(dataSource);
        await using var store = Store(dataSource, directory);
        var known = Enumerable.Range(0, 300).Select(_ => Guid.CreateVersion7()).ToArray();
        await Task.WhenAll(known.Select((id, i) =>
            store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id, T0.AddSeconds(i), token: $"v1:T{i}")])));
        var unknown = Enumerable.Range(0, 100).Select(_ => Guid.CreateVersion7()).ToArray();
        var before = directory.Reads;

        // Every known device asked twice at once, the unknown ones among them: more misses than one statement reads.
        var asked = known.Concat(unknown).Concat(known).ToArray();
        var answers = await Task.WhenAll(asked.Select(id => directory.GetAsync(id)));

        for (var i = 0; i < asked.Length; i++)
        {
            var index = Array.IndexOf(known, asked[i]);
            if (index < 0)
            {
                Assert.Null(answers[i]);
                continue;
            }

            Assert.Equal(asked[i], answers[i]!.DeviceId);
            Assert.Equal($"v1:T{index}", answers[i]!.EncryptedToken);
            Assert.Equal(T0.AddSeconds(index), answers[i]!.RegisteredAt);
        }

        var statements = directory.Reads - before;
        Assert.InRange(statements, 1, asked.Length / 10);
    }

    [Fact]
    public async Task Seed_Should_KeepAHundredThousandDevicesWellUnder100MB_When_TheCacheIsFull()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var directory = Directory(dataSource);
        var token = "v1:" + Convert.ToBase64String(new byte[92]); // a sealed 64-hex-digit APNs token
        var secret = Convert.ToBase64String(new byte[32]);
        var before = GC.GetTotalMemory(forceFullCollection: true);

        for (var i = 0; i < 100_000; i++)
        {
            var id = Guid.CreateVersion7();
            directory.Seed(new DeviceState(id, DeviceMode.Registered, new string("monalProdiOS"), new string(token), new string(secret),
                T0, T0, null, null, null, null));
        }

        var after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.Equal(100_000, directory.CachedCount);
        var megabytes = (after - before) / 1024.0 / 1024.0;
        Assert.True(megabytes < 50, $"100,000 cached devices take {megabytes:F1} MB");
    }

    [Fact]
    public async Task Seed_Should_StayWithinTheBound_When_MoreDevicesThanTheCacheSizeAreSeen()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        var options = Options();
        options.DeviceCacheSize = 1000;
        await using var directory = Directory(dataSource, options);

        for (var i = 0; i < 5000; i++)
        {
            directory.Seed(new DeviceState(Guid.CreateVersion7(), DeviceMode.Stateless, "m", null, null, T0, null, null, null, null, null));
        }

        Assert.InRange(directory.CachedCount, 1, 1000);
    }
}
