using System.Text.Json;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Purge.DeletingInvalidTokens;
using Monal.Push.Purge.Erasing;
using Monal.Push.Purge.Scheduling;

namespace Monal.Push.Tests.Purge;

[Trait("Category", "Postgres")]
public sealed class InvalidTokenTests
{
    private static async Task InvalidateAsync(PurgeHost host, Guid device, DateTimeOffset appleTimestamp) =>
        await host.Store.AppendAsync(device, "device", ExpectedVersion.Any,
            [new TokenInvalidated(Guid.CreateVersion7(), device, "Unregistered", appleTimestamp, host.Clock.GetUtcNow())]);

    [Fact]
    public async Task RunAsync_Should_EraseTheDevice_When_ItDidNotRegisterAgainAfterApplesTimestamp()
    {
        await using var host = await PurgeHost.CreateAsync();
        var t0 = host.Clock.GetUtcNow();
        var stale = await host.RegisterAsync(PurgeHost.NewToken());
        await host.PushAsync(stale);
        var healthy = await host.RegisterAsync(PurgeHost.NewToken());
        host.Clock.Advance(TimeSpan.FromHours(2));
        await InvalidateAsync(host, stale, t0.AddHours(1));
        // The device projection already dropped the token from the row; the job finds the device by invalidated_at.
        Assert.Equal(1L, await host.ScalarAsync<long>(
            "select count(*) from devices where device_id = $1 and encrypted_token is null and invalidated_at is not null", stale));

        var run = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.InvalidTokens, dryRun: false, CancellationToken.None);

        Assert.Equal(RetentionJobs.Succeeded, run.Outcome);
        Assert.Equal(1, run.Deleted["devices_erased"]);
        Assert.Empty(await host.Store.ReadStreamAsync(stale));
        foreach (var table in new[] { "devices", "push_log", "data_keys" })
        {
            Assert.Equal(0L, await host.ScalarAsync<long>($"select count(*) from {table} where device_id = $1", stale));
        }

        Assert.Equal(1L, await host.ScalarAsync<long>("select count(*) from devices where device_id = $1", healthy));
        var receipt = (DeviceErased)Assert.Single(await host.SystemEventsAsync(SystemStreams.Gdpr)).Data;
        Assert.Equal(DeviceEraser.CauseInvalidToken, receipt.Cause);
        var json = await host.ScalarAsync<string>("select data::text from events where stream_id = $1", SystemStreams.Gdpr);
        Assert.DoesNotContain(stale.ToString(), json, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(stale.ToString("N"), json, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task RunAsync_Should_KeepTheDevice_When_ItRenewedAfterApplesTimestamp()
    {
        await using var host = await PurgeHost.CreateAsync();
        var t0 = host.Clock.GetUtcNow();
        var token = PurgeHost.NewToken();
        var device = await host.RegisterAsync(token);
        host.Clock.Advance(TimeSpan.FromHours(3));
        await InvalidateAsync(host, device, t0.AddHours(1));
        host.Clock.Advance(TimeSpan.FromHours(1));
        await host.Store.AppendAsync(device, "device", ExpectedVersion.Any,
            [new RegistrationRenewed(device, PurgeHost.Module, await host.Keys.EncryptAsync(device, token), "example.org", t0.AddHours(2))]);
        host.Clock.Advance(TimeSpan.FromHours(1));

        var dry = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.InvalidTokens, dryRun: true, CancellationToken.None);
        var run = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.InvalidTokens, dryRun: false, CancellationToken.None);

        Assert.Equal(0, dry.Deleted["devices_erased"]);
        Assert.Equal(0, run.Deleted["devices_erased"]);
        Assert.Equal(3, (await host.Store.ReadStreamAsync(device)).Count);
        Assert.Equal(token, await host.Keys.DecryptAsync(device, await host.ScalarAsync<string>(
            "select encrypted_token from devices where device_id = $1", device)));
        Assert.Empty(await host.SystemEventsAsync(SystemStreams.Gdpr));
    }

    [Fact]
    public async Task RunAsync_Should_EraseOnlyAfterTheRun_When_DryRunCountsFirst()
    {
        await using var host = await PurgeHost.CreateAsync();
        var t0 = host.Clock.GetUtcNow();
        var device = await host.RegisterAsync(PurgeHost.NewToken());
        await host.PushAsync(device);
        host.Clock.Advance(TimeSpan.FromMinutes(5));
        await InvalidateAsync(host, device, t0.AddMinutes(1));

        var dry = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.InvalidTokens, dryRun: true, CancellationToken.None);

        Assert.Equal(1, dry.Deleted["devices_erased"]);
        Assert.Equal(2, dry.Deleted["events"]);
        Assert.Equal(2, dry.Deleted["push_events"]);
        Assert.Equal(1, dry.Deleted["push_log"]);
        Assert.Equal(4, (await host.Store.ReadStreamAsync(device)).Count);
        Assert.Empty(await host.SystemEventsAsync(SystemStreams.Gdpr));
        var evidence = (RetentionRun)Assert.Single(await host.SystemEventsAsync(SystemStreams.Retention)).Data;
        Assert.True(evidence.DryRun);
        Assert.Equal(JsonSerializer.Serialize(dry.Deleted.OrderBy(p => p.Key)), JsonSerializer.Serialize(evidence.Deleted.OrderBy(p => p.Key)));
    }

    [Fact]
    public async Task RunAsync_Should_EraseAStatelessDeviceAndRememberOnlyItsKeyedId_When_ApplesTimestampIsBeforeItsFirstPublish()
    {
        await using var host = await PurgeHost.CreateAsync();
        var device = await host.RegisterStatelessAsync(PurgeHost.NewToken());
        await host.PushAsync(device);
        host.Clock.Advance(TimeSpan.FromMinutes(5));
        await InvalidateAsync(host, device, host.Clock.GetUtcNow().AddDays(-2));

        var run = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.InvalidTokens, dryRun: false, CancellationToken.None);

        Assert.Equal(1, run.Deleted["devices_erased"]);
        Assert.Empty(await host.Store.ReadStreamAsync(device));
        Assert.Equal(0L, await host.ScalarAsync<long>("select count(*) from data_keys where device_id = $1", device));
        Assert.Equal(1L, await host.ScalarAsync<long>("select count(*) from dead_tokens where device_id = $1", device));
    }

    [Fact]
    public async Task RunAsync_Should_EraseUnregisteredAndRejectedDevices_When_TheirRegistrationEnded()
    {
        await using var host = await PurgeHost.CreateAsync();
        var unregistered = await host.RegisterAsync(PurgeHost.NewToken());
        var rejected = await host.RegisterAsync(PurgeHost.NewToken());
        var healthy = await host.RegisterAsync(PurgeHost.NewToken());
        host.Clock.Advance(TimeSpan.FromMinutes(1));
        await host.Store.AppendAsync(unregistered, "device", ExpectedVersion.Any, [new DeviceUnregistered(unregistered, host.Clock.GetUtcNow())]);
        await host.Store.AppendAsync(rejected, "device", ExpectedVersion.Any,
            [new TokenRejected(Guid.CreateVersion7(), rejected, "BadDeviceToken", host.Clock.GetUtcNow())]);

        var run = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.InvalidTokens, dryRun: false, CancellationToken.None);

        Assert.Equal(2, run.Deleted["devices_erased"]);
        foreach (var gone in new[] { unregistered, rejected })
        {
            Assert.Empty(await host.Store.ReadStreamAsync(gone));
            Assert.Equal(0L, await host.ScalarAsync<long>("select count(*) from data_keys where device_id = $1", gone));
        }

        Assert.Equal(1L, await host.ScalarAsync<long>("select count(*) from data_keys where device_id = $1", healthy));
        var causes = (await host.SystemEventsAsync(SystemStreams.Gdpr)).Select(e => ((DeviceErased)e.Data).Cause).Order().ToList();
        Assert.Equal([DeviceEraser.CauseRejectedToken, DeviceEraser.CauseUnregistered], causes);
    }

    [Fact]
    public async Task RunAsync_Should_ForgetDeadTokens_When_TheyAreOlderThanThePushLogWindow()
    {
        await using var host = await PurgeHost.CreateAsync();
        var old = await host.RegisterStatelessAsync(PurgeHost.NewToken());
        await InvalidateAsync(host, old, host.Clock.GetUtcNow().AddHours(-1));
        host.Clock.Advance(TimeSpan.FromDays(10));
        var recent = await host.RegisterStatelessAsync(PurgeHost.NewToken());
        await InvalidateAsync(host, recent, host.Clock.GetUtcNow().AddHours(-1));
        host.Clock.Advance(TimeSpan.FromDays(5));

        var run = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.InvalidTokens, dryRun: false, CancellationToken.None);

        Assert.Equal(1, run.Deleted["dead_tokens"]);
        Assert.Equal(0L, await host.ScalarAsync<long>("select count(*) from dead_tokens where device_id = $1", old));
        Assert.Equal(1L, await host.ScalarAsync<long>("select count(*) from dead_tokens where device_id = $1", recent));
    }

    [Fact]
    public async Task RunAsync_Should_DeleteADataKeyWithoutAStream_When_ItIsOlderThanAnHour()
    {
        await using var host = await PurgeHost.CreateAsync();
        var live = await host.RegisterStatelessAsync(PurgeHost.NewToken());
        var orphan = Guid.CreateVersion7();
        await host.Keys.EncryptAsync(orphan, PurgeHost.NewToken()); // a first publish whose append then failed
        host.Clock.Advance(InvalidTokenSweeper.OrphanedKeyAge + TimeSpan.FromMinutes(1));
        var young = Guid.CreateVersion7();
        await host.Keys.EncryptAsync(young, PurgeHost.NewToken()); // a first publish still appending

        var dry = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.InvalidTokens, dryRun: true, CancellationToken.None);
        var run = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.InvalidTokens, dryRun: false, CancellationToken.None);

        Assert.Equal(1, dry.Deleted["orphaned_data_keys"]);
        Assert.Equal(1, run.Deleted["orphaned_data_keys"]);
        Assert.Equal(0L, await host.ScalarAsync<long>("select count(*) from data_keys where device_id = $1", orphan));
        Assert.Equal(1L, await host.ScalarAsync<long>("select count(*) from data_keys where device_id = $1", young));
        Assert.Equal(1L, await host.ScalarAsync<long>("select count(*) from data_keys where device_id = $1", live));
    }
}
