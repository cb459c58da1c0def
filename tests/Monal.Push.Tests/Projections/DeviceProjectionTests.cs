using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Tests.Fixtures;
using static Monal.Push.Tests.Projections.ProjectionKit;

namespace Monal.Push.Tests.Projections;

[Trait("Category", "Postgres")]
public sealed class DeviceProjectionTests
{
    [Fact]
    public async Task Project_Should_FoldEveryDeviceEvent_When_TheyAreAppended()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var store = Store(dataSource);
        var id = Guid.CreateVersion7();

        await store.AppendAsync(id, "device", ExpectedVersion.NoStream, [Registered(id, domain: "a.example")]);
        var row = await DeviceAsync(dataSource, id);
        Assert.NotNull(row);
        Assert.Equal(new DeviceRow("registered", "monalProdiOS", "v1:AAAA", "hash", T0, null, null, null, null, null, null, null, null,
            row.Domains), row);
        Assert.Equal(["a.example"], row.Domains);

        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Renewed(id, T0.AddHours(1), domain: "b.example")]);
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id, "c.example"), Requested(id, "a.example")]);
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id, "c.example")]);
        var push = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [
            new PushDelivered(push, id, push, T0.AddHours(2), 12.5),
            new PushDelivered(push, id, push, T0.AddHours(1.5), 12.5),
            new PushFailed(push, id, 503, null, true, T0.AddHours(3)),
            new PushFailed(push, id, 400, "BadPriority", false, T0.AddHours(2.5))]);

        row = await DeviceAsync(dataSource, id);
        Assert.NotNull(row);
        Assert.Equal("monalProdiOS-sandbox", row.PushModule);
        Assert.Equal("v1:BBBB", row.EncryptedToken);
        Assert.Equal("hash", row.SecretHash);
        Assert.Equal(T0, row.RegisteredAt);
        Assert.Equal(T0.AddHours(1), row.RenewedAt);
        Assert.Equal(["a.example", "b.example", "c.example"], row.Domains);
        Assert.Equal(T0.AddHours(2), row.LastPushAt);
        Assert.Equal(T0.AddHours(3), row.LastErrorAt);
        Assert.Equal("503", row.LastErrorReason);
        Assert.Null(row.UnregisteredAt);

        await store.AppendAsync(id, "device", ExpectedVersion.Any, [new DeviceUnregistered(id, T0.AddHours(4))]);
        Assert.Equal(T0.AddHours(4), (await DeviceAsync(dataSource, id))!.UnregisteredAt);
    }

    [Fact]
    public async Task Project_Should_RecordStatelessDevices_When_FirstPublishRegistersAndPushesInOneAppend()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var store = Store(dataSource);
        var id = Guid.CreateVersion7();

        await store.AppendAsync(id, "device", ExpectedVersion.NoStream, [Stateless(id), Requested(id, "jabber.example")]);

        var row = await DeviceAsync(dataSource, id);
        Assert.Equal("stateless", row!.Mode);
        Assert.Equal("monalProdCatalyst", row.PushModule);
        Assert.Null(row.SecretHash);
        Assert.Equal(["jabber.example", "stateless.example"], row.Domains);
        Assert.Equal(2, (await store.ReadStreamAsync(id)).Count);
    }

    public static TheoryData<string> InactiveCases => ["unknown", "unregistered", "invalidated", "rejected"];

    [Theory]
    [MemberData(nameof(InactiveCases))]
    public async Task AppendAsync_Should_RefuseThePushAndStoreNothing_When_DeviceIsNotActive(string state)
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var store = Store(dataSource);
        var id = Guid.CreateVersion7();
        if (state != "unknown")
        {
            await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)]);
            object deactivation = state switch
            {
                "unregistered" => new DeviceUnregistered(id, T0.AddMinutes(1)),
                "invalidated" => new TokenInvalidated(Guid.CreateVersion7(), id, "Unregistered", T0.AddMinutes(1), T0.AddMinutes(2)),
                _ => new TokenRejected(Guid.CreateVersion7(), id, "BadDeviceToken", T0.AddMinutes(1)),
            };
            await store.AppendAsync(id, "device", ExpectedVersion.Any, [deactivation]);
        }

        var before = await store.GetStreamVersionAsync(id);
        var refused = await Assert.ThrowsAsync<AppendRejectedException>(
            () => store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id, "never.example")]));

        Assert.Equal("device_not_active", refused.Reason);
        Assert.Equal(before, await store.GetStreamVersionAsync(id));
        Assert.DoesNotContain(await store.ReadStreamAsync(id), e => e.Data is PushRequested);
        Assert.DoesNotContain("never.example", (await DeviceAsync(dataSource, id))?.Domains ?? []);
    }

    [Fact]
    public async Task AppendAsync_Should_RefuseThePush_When_InvalidationPrecedesItInTheSameAppend()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var store = Store(dataSource);
        var id = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)]);

        await Assert.ThrowsAsync<AppendRejectedException>(() => store.AppendAsync(id, "device", ExpectedVersion.Any,
            [new TokenInvalidated(Guid.CreateVersion7(), id, "Unregistered", T0.AddMinutes(1), T0.AddMinutes(2)), Requested(id)]));

        Assert.Null((await DeviceAsync(dataSource, id))!.InvalidatedAt);
        Assert.Single(await store.ReadStreamAsync(id));
    }

    [Fact]
    public async Task ExecuteBatchAsync_Should_FailOnlyTheCulprit_When_APushToAnInactiveDeviceSharesTheBatch()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var store = Store(dataSource, groupCommit: false);
        var active = Enumerable.Range(0, 5).Select(_ => Guid.CreateVersion7()).ToArray();
        foreach (var id in active)
        {
            await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)]);
        }

        var invalid = Guid.CreateVersion7();
        await store.AppendAsync(invalid, "device", ExpectedVersion.Any,
            [Registered(invalid), new TokenInvalidated(Guid.CreateVersion7(), invalid, "Unregistered", T0.AddMinutes(1), T0.AddMinutes(2))]);
        var unknown = Guid.CreateVersion7();

        // One group-commit batch, exactly as the committer would hand it over: valid appends around two culprits.
        var batch = new List<PendingAppend>
        {
            new(active[0], "device", ExpectedVersion.Any, [Requested(active[0])], null),
            new(invalid, "device", ExpectedVersion.Any, [Requested(invalid)], null),
            new(active[1], "device", ExpectedVersion.Any, [Requested(active[1]), Requested(active[1])], null),
            new(unknown, "device", ExpectedVersion.Any, [Requested(unknown)], null),
            new(active[2], "device", ExpectedVersion.Any, [Registered(active[2], T0.AddDays(1)), Requested(active[2])], null),
        };
        await store.ExecuteBatchAsync(batch, CancellationToken.None);

        Assert.IsType<AppendRejectedException>(batch[1].Completion.Task.Exception?.InnerException);
        Assert.IsType<AppendRejectedException>(batch[3].Completion.Task.Exception?.InnerException);
        foreach (var ok in new[] { batch[0], batch[2], batch[4] })
        {
            Assert.True(ok.Completion.Task.IsCompletedSuccessfully);
        }

        Assert.Equal(2, (await store.ReadStreamAsync(active[0])).Count);
        Assert.Equal(3, (await store.ReadStreamAsync(active[1])).Count);
        Assert.Equal(3, (await store.ReadStreamAsync(active[2])).Count);
        Assert.Equal(2, (await store.ReadStreamAsync(invalid)).Count);
        Assert.Empty(await store.ReadStreamAsync(unknown));
    }

    [Fact]
    public async Task ExecuteBatchAsync_Should_CreateEveryNewStatelessDeviceAndRefuseOnlyTheDeadToken_When_FirstPublishesShareABatch()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var store = Store(dataSource, groupCommit: false);
        var known = Guid.CreateVersion7();
        await store.AppendAsync(known, "device", ExpectedVersion.Any, [Registered(known)]);
        var fresh = Enumerable.Range(0, 4).Select(_ => Guid.CreateVersion7()).ToArray();
        var dead = Guid.CreateVersion7();
        await using (var bury = dataSource.CreateCommand("insert into dead_tokens (device_id, dead_at) values ($1, now())"))
        {
            bury.Parameters.Add(new() { Value = dead });
            await bury.ExecuteNonQueryAsync();
        }

        // One group-commit batch as the committer hands it over: first publishes (one with its push to another domain
        // than the registration's, one with two pushes), a dead token among them, and an ordinary push.
        var batch = new List<PendingAppend>
        {
            new(fresh[0], "device", ExpectedVersion.NoStream, [Stateless(fresh[0]), Requested(fresh[0], "stateless.example")], null),
            new(known, "device", ExpectedVersion.Any, [Requested(known)], null),
            new(fresh[1], "device", ExpectedVersion.NoStream, [Stateless(fresh[1]), Requested(fresh[1], "other.example")], null),
            new(dead, "device", ExpectedVersion.NoStream, [Stateless(dead), Requested(dead)], null),
            new(fresh[2], "device", ExpectedVersion.NoStream, [Stateless(fresh[2]), Requested(fresh[2]), Requested(fresh[2])], null),
            new(fresh[3], "device", ExpectedVersion.NoStream, [Stateless(fresh[3], token: "v1:TTTT"), Requested(fresh[3], "stateless.example")], null),
        };
        await store.ExecuteBatchAsync(batch, CancellationToken.None);

        Assert.IsType<AppendRejectedException>(batch[3].Completion.Task.Exception?.InnerException);
        Assert.All(batch.Where(b => b.StreamId != dead), b => Assert.True(b.Completion.Task.IsCompletedSuccessfully));
        Assert.Null(await DeviceAsync(dataSource, dead));
        Assert.Empty(await store.ReadStreamAsync(dead));
        Assert.Equal(2, (await store.ReadStreamAsync(known)).Count);
        string[][] domains = [["stateless.example"], ["other.example", "stateless.example"], ["example.org", "stateless.example"], ["stateless.example"]];
        for (var i = 0; i < fresh.Length; i++)
        {
            var row = await DeviceAsync(dataSource, fresh[i]);
            Assert.NotNull(row);
            Assert.Equal(new DeviceRow("stateless", "monalProdCatalyst", i == 3 ? "v1:TTTT" : "v1:SSSS", null, T0, null, null, null, null,
                null, null, null, null, row.Domains), row);
            Assert.Equal(domains[i], row.Domains);
            Assert.Equal(i == 2 ? 3 : 2, (await store.ReadStreamAsync(fresh[i])).Count);
        }
    }

    [Fact]
    public async Task AppendAsync_Should_ApplyTheRegistrationAsOneByOne_When_AFirstPublishFindsADeviceRowWithoutItsStream()
    {
        // A row with no stream does not happen in operation (an erase deletes both); the set-wise creation still
        // hands such a device to monal_device_apply, whose rules decide: a registration after Apple's timestamp
        // re-activates it, one before it leaves the device invalidated and its push refused.
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var store = Store(dataSource);
        var revived = Guid.CreateVersion7();
        var stillDead = Guid.CreateVersion7();
        await using (var insert = dataSource.CreateCommand("""
            insert into devices (device_id, mode, push_module, encrypted_token, registered_at, invalidated_at, apple_timestamp, domains)
            values ($1, 'stateless', 'monalProdCatalyst', null, $3, $3, $3, '{old.example}'),
                   ($2, 'stateless', 'monalProdCatalyst', null, $3, $4, $4, '{old.example}')
            """))
        {
            insert.Parameters.Add(new() { Value = revived });
            insert.Parameters.Add(new() { Value = stillDead });
            insert.Parameters.Add(new() { Value = T0.AddDays(-1) });
            insert.Parameters.Add(new() { Value = T0.AddDays(1) });
            await insert.ExecuteNonQueryAsync();
        }

        await store.AppendAsync(revived, "device", ExpectedVersion.NoStream, [Stateless(revived), Requested(revived)]);
        await Assert.ThrowsAsync<AppendRejectedException>(() =>
            store.AppendAsync(stillDead, "device", ExpectedVersion.NoStream, [Stateless(stillDead), Requested(stillDead)]));

        var row = await DeviceAsync(dataSource, revived);
        Assert.NotNull(row);
        Assert.Equal("v1:SSSS", row.EncryptedToken);
        Assert.Equal(T0, row.RegisteredAt);
        Assert.Null(row.InvalidatedAt);
        Assert.Null(row.AppleTimestamp);
        Assert.Equal(["example.org", "old.example", "stateless.example"], row.Domains);
        var dead = await DeviceAsync(dataSource, stillDead);
        Assert.NotNull(dead);
        Assert.Null(dead.EncryptedToken);
        Assert.Equal(["old.example"], dead.Domains);
        Assert.Empty(await store.ReadStreamAsync(stillDead));
    }

    [Fact]
    public async Task Project_Should_ReactivateTheDevice_When_ItRegistersAgainAfterApplesTimestampOnly()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var store = Store(dataSource);
        var id = Guid.CreateVersion7();
        var apple = T0.AddHours(1);
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id), Requested(id)]);
        await store.AppendAsync(id, "device", ExpectedVersion.Any,
            [new TokenInvalidated(Guid.CreateVersion7(), id, "Unregistered", apple, T0.AddHours(2))]);

        var invalidated = await DeviceAsync(dataSource, id);
        Assert.Equal(T0.AddHours(2), invalidated!.InvalidatedAt);
        Assert.Equal(apple, invalidated.AppleTimestamp);
        Assert.Null(invalidated.EncryptedToken); // policy: a token Apple declared invalid is deleted
        Assert.Equal("Unregistered", invalidated.LastErrorReason);

        // A renewal stamped before Apple's timestamp carries the dead token: still invalid.
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Renewed(id, apple.AddMinutes(-5), token: "v1:OLD")]);
        var stillDead = await DeviceAsync(dataSource, id);
        Assert.Equal(T0.AddHours(2), stillDead!.InvalidatedAt);
        Assert.Null(stillDead.EncryptedToken);
        await Assert.ThrowsAsync<AppendRejectedException>(() => store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]));

        // Registered again after Apple's timestamp: active with the new token.
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id, apple.AddMinutes(5), token: "v1:NEW")]);
        var alive = await DeviceAsync(dataSource, id);
        Assert.Null(alive!.InvalidatedAt);
        Assert.Null(alive.AppleTimestamp);
        Assert.Equal("v1:NEW", alive.EncryptedToken);
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]);
    }

    [Fact]
    public async Task Project_Should_IgnoreTheInvalidation_When_TheDeviceRegisteredAfterApplesTimestamp()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var store = Store(dataSource);
        var id = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id, T0.AddHours(3))]);

        await store.AppendAsync(id, "device", ExpectedVersion.Any,
            [new TokenInvalidated(Guid.CreateVersion7(), id, "Unregistered", T0.AddHours(1), T0.AddHours(4))]);

        var row = await DeviceAsync(dataSource, id);
        Assert.Null(row!.InvalidatedAt);
        Assert.Equal("v1:AAAA", row.EncryptedToken);
        Assert.Equal(T0.AddHours(4), row.LastErrorAt);
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]);
    }

    [Fact]
    public async Task DeleteStreamAsync_Should_RemoveTheDeviceRowAndItsPushLog_When_TheDeviceIsErased()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        await using var store = Store(dataSource);
        var id = Guid.CreateVersion7();
        var pushId = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id), Requested(id, pushId: pushId)]);
        await using (var cmd = dataSource.CreateCommand(
            "insert into push_log (push_id, device_id, domain, requested_at, expires_at) values ($1, $2, 'example.org', now(), now())"))
        {
            cmd.Parameters.Add(new() { Value = pushId });
            cmd.Parameters.Add(new() { Value = id });
            await cmd.ExecuteNonQueryAsync();
        }

        await store.DeleteStreamAsync(id);

        Assert.Null(await DeviceAsync(dataSource, id));
        Assert.Equal(0L, await ScalarAsync<long>(dataSource, "select count(*) from push_log where device_id = $1", id));
        await Assert.ThrowsAsync<AppendRejectedException>(() => store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]));
    }

    [Fact]
    public async Task RebuildAsync_Should_ReproduceTheIncrementalRows_When_ReplayedOnceOrTwice()
    {
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = Store(dataSource);
        var ids = Enumerable.Range(0, 6).Select(_ => Guid.CreateVersion7()).ToArray();
        await store.AppendAsync(ids[0], "device", ExpectedVersion.Any, [Registered(ids[0]), Requested(ids[0], "x.example")]);
        await store.AppendAsync(ids[0], "device", ExpectedVersion.Any, [new PushDelivered(Guid.NewGuid(), ids[0], Guid.NewGuid(), T0.AddMinutes(1).AddTicks(1_234_567), 3)]);
        await store.AppendAsync(ids[1], "device", ExpectedVersion.Any, [Stateless(ids[1]), Requested(ids[1])]);
        await store.AppendAsync(ids[1], "device", ExpectedVersion.Any, [new PushFailed(Guid.NewGuid(), ids[1], 500, "InternalServerError", true, T0.AddMinutes(2).AddTicks(5))]);
        await store.AppendAsync(ids[2], "device", ExpectedVersion.Any, [Registered(ids[2]), Renewed(ids[2], T0.AddHours(1).AddTicks(15), domain: "r.example")]);
        await store.AppendAsync(ids[3], "device", ExpectedVersion.Any, [Registered(ids[3]),
            new TokenInvalidated(Guid.NewGuid(), ids[3], "Unregistered", T0.AddHours(1), T0.AddHours(2)),
            Renewed(ids[3], T0.AddMinutes(30)), Registered(ids[3], T0.AddHours(3), token: "v1:NEW")]);
        await store.AppendAsync(ids[4], "device", ExpectedVersion.Any, [Registered(ids[4]), new TokenRejected(Guid.NewGuid(), ids[4], "BadDeviceToken", T0.AddHours(1))]);
        await store.AppendAsync(ids[5], "device", ExpectedVersion.Any, [Registered(ids[5]), new DeviceUnregistered(ids[5], T0.AddHours(1))]);
        const string Devices = "select * from devices order by device_id";
        var incremental = await RowsAsync(dataSource, Devices);
        var rebuilder = Rebuilder(store, Options());

        var once = await rebuilder.RebuildAsync("devices");
        var afterOnce = await RowsAsync(dataSource, Devices);
        await rebuilder.RebuildAsync("devices");
        var afterTwice = await RowsAsync(dataSource, Devices);

        Assert.Equal(6, incremental.Count);
        Assert.Equal(incremental, afterOnce);
        Assert.Equal(incremental, afterTwice);
        Assert.Equal("devices", Assert.Single(once).Name);
    }
}
