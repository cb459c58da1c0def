using System.Diagnostics;
using System.Reflection;
using System.Text;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Events;
using Monal.Push.Purge.Erasing;
using Monal.Push.Purge.Exporting;
using Monal.Push.Purge.Locating;
using Monal.Push.Purge.Scheduling;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.Tests.Purge;

[Trait("Category", "Postgres")]
public sealed class GdprTests
{
    /// <summary>A device that went through everything: registration, renewal with a new token, pushes and every outcome.</summary>
    private static async Task<(Guid Device, string Token, string OldToken)> FullHistoryAsync(PurgeHost host)
    {
        var oldToken = PurgeHost.NewToken();
        var token = PurgeHost.NewToken();
        var device = await host.RegisterAsync(oldToken, "old.example.org");
        host.Clock.Advance(TimeSpan.FromHours(1));
        await host.Store.AppendAsync(device, "device", ExpectedVersion.Any,
            [new RegistrationRenewed(device, PurgeHost.Module, await host.Keys.EncryptAsync(device, token), "example.org", host.Clock.GetUtcNow())]);
        await host.PushAsync(device, "example.org");
        host.Clock.Advance(TimeSpan.FromMinutes(1));
        var failed = await host.PushAsync(device, "chat.example.net", delivered: false);
        await host.Store.AppendAsync(device, "device", ExpectedVersion.Any,
            [new PushFailed(failed, device, 429, "TooManyRequests", true, host.Clock.GetUtcNow())]);
        var rejected = await host.PushAsync(device, delivered: false);
        host.Clock.Advance(TimeSpan.FromMinutes(1));
        var invalid = await host.PushAsync(device, delivered: false);
        // Apple answers both pushes after the second was requested: the device projection refuses any push to a
        // device Apple has rejected, as the gateway does.
        await host.Store.AppendAsync(device, "device", ExpectedVersion.Any,
            [new TokenRejected(rejected, device, "BadDeviceToken", host.Clock.GetUtcNow())]);
        await host.Store.AppendAsync(device, "device", ExpectedVersion.Any,
            [new TokenInvalidated(invalid, device, "Unregistered", host.Clock.GetUtcNow().AddSeconds(-30), host.Clock.GetUtcNow())]);
        await host.Store.AppendAsync(device, "device", ExpectedVersion.Any, [new DeviceUnregistered(device, host.Clock.GetUtcNow())]);
        await host.ProjectAsync();
        return (device, token, oldToken);
    }

    [Fact]
    public async Task ExportAsync_Should_FillEveryField_When_TheDeviceWentThroughEverything()
    {
        await using var host = await PurgeHost.CreateAsync();
        var (device, token, oldToken) = await FullHistoryAsync(host);

        var result = await host.Get<SubjectAccessExporter>().ExportAsync(SubjectQuery.ByNode(device.ToString()), ExportFormat.Json, CancellationToken.None);

        var d = Assert.Single(result.Export.Devices);
        foreach (var property in typeof(DeviceExport).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var value = property.GetValue(d);
            Assert.True(value is not null, $"{property.Name} is missing");
            if (value is System.Collections.IEnumerable list and not string)
            {
                Assert.True(list.Cast<object>().Any(), $"{property.Name} is empty");
            }
        }

        Assert.Equal(token, d.Token);
        Assert.Equal([oldToken], d.EarlierTokens);
        Assert.Equal("Registered", d.Mode);
        Assert.True(d.SecretStored);
        Assert.True(d.SecretEncrypted);
        Assert.Equal(["chat.example.net", "example.org", "old.example.org"], d.Domains);
        Assert.Equal(["delivered", "failed (transient)", "token rejected", "token invalid"], d.Pushes.Select(p => p.Outcome));
        Assert.Equal(4, d.HeldIn["push_log"]);
        Assert.Contains(token, result.Document, StringComparison.Ordinal);
        Assert.Contains("Apple Push Notification service", result.Document, StringComparison.Ordinal);
        Assert.Contains("14 days", result.Document, StringComparison.Ordinal);
        var p = result.Export.Processing;
        Assert.NotEmpty(p.Purposes);
        Assert.NotEmpty(p.Recipients);
        Assert.NotEmpty(p.Sources);
        Assert.Equal(4, p.RetentionPeriods.Count);
        Assert.Contains(p.RetentionPeriods, r => r.Category.StartsWith("Pushes per UTC day and XMPP domain", StringComparison.Ordinal)
            && r.Period.StartsWith("14 days, deleted with the push log", StringComparison.Ordinal));

        var receipt = (SubjectAccessExported)Assert.Single(await host.SystemEventsAsync(SystemStreams.Gdpr)).Data;
        Assert.Equal(result.Export.RequestId, receipt.RequestId);
        var stored = await host.ScalarAsync<string>("select data::text from events where stream_id = $1", SystemStreams.Gdpr);
        Assert.DoesNotContain(token, stored, StringComparison.Ordinal);
        Assert.DoesNotContain(device.ToString(), stored, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExportAsync_Should_SayTheSecretIsKeptHashedAndEncrypted_When_ADeviceRegistered()
    {
        await using var host = await PurgeHost.CreateAsync();
        var registered = await host.RegisterAsync(PurgeHost.NewToken());
        var stateless = await host.RegisterStatelessAsync(PurgeHost.NewToken());

        var text = (await host.Get<SubjectAccessExporter>().ExportAsync(
            SubjectQuery.ByNode(registered.ToString()), ExportFormat.Text, CancellationToken.None)).Document;
        var none = await host.Get<SubjectAccessExporter>().CollectAsync(SubjectQuery.ByNode(stateless.ToString()), CancellationToken.None);

        Assert.Contains("kept in two forms: a keyed hash", text, StringComparison.Ordinal);
        Assert.Contains("encrypted with this device's data key, to hand the same secret back when the device registers again", text, StringComparison.Ordinal);
        Assert.Contains("Erasure deletes the data key, which makes the encrypted copy unreadable", text, StringComparison.Ordinal);
        Assert.DoesNotContain("not kept", text, StringComparison.Ordinal);
        Assert.Contains("secret as a keyed hash and encrypted", text, StringComparison.Ordinal);
        Assert.Contains("Pushes per UTC day and XMPP domain", text, StringComparison.Ordinal);
        var d = Assert.Single(none.Devices);
        Assert.False(d.SecretStored || d.SecretEncrypted);
        Assert.Equal("none", SubjectAccessExporter.RenderText(none).Split('\n').Single(l => l.TrimStart().StartsWith("Secret:", StringComparison.Ordinal)).Split(':', 2)[1].Trim());
    }

    [Fact]
    public async Task ExportAsync_Should_FindStatelessAndRegisteredDevices_When_AskedByToken()
    {
        await using var host = await PurgeHost.CreateAsync();
        var token = PurgeHost.NewToken();
        var stateless = await host.RegisterStatelessAsync(token, "xmpp.example.org");
        await host.PushAsync(stateless, "xmpp.example.org");
        var registered = await host.RegisterAsync(token);
        await host.RegisterAsync(PurgeHost.NewToken());

        var result = await host.Get<SubjectAccessExporter>().ExportAsync(SubjectQuery.ByToken(token), ExportFormat.Text, CancellationToken.None);
        var byNode = await host.Get<SubjectAccessExporter>().CollectAsync(SubjectQuery.ByNode(token), CancellationToken.None);

        Assert.Equal(new[] { stateless, registered }.Order(), result.Export.Devices.Select(d => d.DeviceId).Order());
        Assert.All(result.Export.Devices, d => Assert.Equal(token, d.Token));
        Assert.Contains("Stateless", result.Document, StringComparison.Ordinal);
        Assert.Equal(2, byNode.Devices.Count);
        Assert.Empty((await host.Get<SubjectAccessExporter>().CollectAsync(SubjectQuery.ByToken(PurgeHost.NewToken()), CancellationToken.None)).Devices);
    }

    [Theory]
    [InlineData("token")]
    [InlineData("node")]
    public async Task EraseAsync_Should_EraseTheStatelessDevice_When_ItsTokenIsGivenInUpperCase(string by)
    {
        await using var host = await PurgeHost.CreateAsync();
        var token = PurgeHost.NewToken(); // lower case, as ingest stores it
        var device = await host.RegisterStatelessAsync(token);
        await host.PushAsync(device);
        var upper = token.ToUpperInvariant();
        var query = by == "token" ? SubjectQuery.ByToken(upper) : SubjectQuery.ByNode(upper);

        var export = await host.Get<SubjectAccessExporter>().CollectAsync(query, CancellationToken.None);
        var receipts = await host.Get<DeviceEraser>().EraseAsync(query, dryRun: false, CancellationToken.None);

        Assert.Equal(device, Assert.Single(export.Devices).DeviceId);
        Assert.Equal(token, export.Devices[0].Token);
        Assert.Equal(1, Assert.Single(receipts).Deleted["data_keys"]);
        Assert.False(await host.Get<DeviceLocator>().IsHeldAsync(device, CancellationToken.None));
    }

    [Fact]
    public async Task EraseAsync_Should_EraseTheRegisteredDevice_When_ItsTokenIsGivenInUpperCase()
    {
        await using var host = await PurgeHost.CreateAsync();
        var token = PurgeHost.NewToken();
        var device = await host.RegisterAsync(token);
        var other = await host.RegisterAsync(PurgeHost.NewToken());

        var receipts = await host.Get<DeviceEraser>().EraseAsync(
            SubjectQuery.ByToken(" " + token.ToUpperInvariant() + "\n"), dryRun: false, CancellationToken.None);

        Assert.Equal(1, Assert.Single(receipts).Deleted["data_keys"]);
        Assert.False(await host.Get<DeviceLocator>().IsHeldAsync(device, CancellationToken.None));
        Assert.True(await host.Get<DeviceLocator>().IsHeldAsync(other, CancellationToken.None));
    }

    [Theory]
    [InlineData("upper")]
    [InlineData("lower")]
    public async Task LocateAsync_Should_FindTheRegisteredDevice_When_ItsNodeUuidIsGivenInAnyCase(string letterCase)
    {
        await using var host = await PurgeHost.CreateAsync();
        var device = await host.RegisterAsync(PurgeHost.NewToken());
        var node = letterCase == "upper" ? device.ToString().ToUpperInvariant() : device.ToString();

        var found = await host.Get<DeviceLocator>().LocateAsync(SubjectQuery.ByNode(node), CancellationToken.None);

        Assert.Equal(device, Assert.Single(found));
    }

    [Fact]
    public async Task EraseAsync_Should_ForgetTheDeadToken_When_TheDeviceIsKnownOnlyByItsKeyedId()
    {
        await using var host = await PurgeHost.CreateAsync();
        var token = PurgeHost.NewToken();
        var device = await host.RegisterStatelessAsync(token);
        await host.PushAsync(device);
        var apple = host.Clock.GetUtcNow().AddDays(-1);
        await host.Store.AppendAsync(device, "device", ExpectedVersion.Any,
            [new TokenInvalidated(Guid.CreateVersion7(), device, "Unregistered", apple, host.Clock.GetUtcNow())]);
        await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.InvalidTokens, dryRun: false, CancellationToken.None);
        var query = SubjectQuery.ByToken(token.ToUpperInvariant());

        var export = await host.Get<SubjectAccessExporter>().CollectAsync(query, CancellationToken.None);
        var receipts = await host.Get<DeviceEraser>().EraseAsync(query, dryRun: false, CancellationToken.None);

        var held = Assert.Single(export.Devices);
        Assert.Null(held.Token);
        Assert.StartsWith("erased", held.TokenStatus, StringComparison.Ordinal);
        Assert.Equal(apple, held.AppleTimestamp);
        Assert.Equal(1L, held.HeldIn["dead_tokens"]);
        Assert.Equal(1, Assert.Single(receipts).Deleted["dead_tokens"]);
        Assert.Equal(0L, await host.ScalarAsync<long>("select count(*) from dead_tokens"));
        Assert.False(await host.Get<DeviceLocator>().IsHeldAsync(device, CancellationToken.None));
    }

    [Fact]
    public async Task EraseAsync_Should_EraseNothing_When_TheTokenIsUnknown()
    {
        await using var host = await PurgeHost.CreateAsync();
        var device = await host.RegisterStatelessAsync(PurgeHost.NewToken());

        var receipts = await host.Get<DeviceEraser>().EraseAsync(
            SubjectQuery.ByToken(PurgeHost.NewToken().ToUpperInvariant()), dryRun: false, CancellationToken.None);

        Assert.Empty(receipts);
        Assert.True(await host.Get<DeviceLocator>().IsHeldAsync(device, CancellationToken.None));
    }

    [Fact]
    public async Task EraseAsync_Should_LeaveNoTraceInAFullDump_When_TheDeviceIsErased()
    {
        await using var host = await PurgeHost.CreateAsync();
        var (device, token, oldToken) = await FullHistoryAsync(host);
        // The device projection cleared the devices row's token when Apple declared it invalid; the renewal event
        // still holds the current token's ciphertext.
        Assert.Equal(0L, await host.ScalarAsync<long>("select count(encrypted_token) from devices where device_id = $1", device));
        var ciphertext = await host.ScalarAsync<string>(
            "select data->>'encrypted_token' from events where stream_id = $1 and type = 'registration_renewed.v1'", device);
        var wrapped = await host.ScalarAsync<byte[]>("select wrapped_key from data_keys where device_id = $1", device);
        var before = await PgDump.DumpAsync(host.ConnectionString);
        Assert.Contains(ciphertext, before, StringComparison.Ordinal);            // the search below can find what it looks for
        Assert.Contains(Convert.ToHexStringLower(wrapped), before, StringComparison.Ordinal);

        var dry = await host.Get<DeviceEraser>().EraseAsync(SubjectQuery.ByNode(device.ToString()), dryRun: true, CancellationToken.None);
        Assert.True(Assert.Single(dry).DryRun);
        Assert.Equal(4, dry[0].Deleted["push_log"]);
        Assert.Equal(1L, await host.ScalarAsync<long>("select count(*) from data_keys where device_id = $1", device));

        var receipts = await host.Get<DeviceEraser>().EraseAsync(SubjectQuery.ByToken(token), dryRun: false, CancellationToken.None);

        var receipt = Assert.Single(receipts);
        Assert.NotEqual(Guid.Empty, receipt.ReceiptId);
        Assert.Equal(1, receipt.Deleted["data_keys"]);
        Assert.Equal(1, receipt.Deleted["devices"]);
        var after = await PgDump.DumpAsync(host.ConnectionString);
        foreach (var secret in new[] { token, oldToken, ciphertext, Convert.ToHexStringLower(wrapped), Convert.ToBase64String(wrapped), device.ToString() })
        {
            Assert.DoesNotContain(secret, after, StringComparison.OrdinalIgnoreCase);
        }

        var erased = (DeviceErased)Assert.Single(await host.SystemEventsAsync(SystemStreams.Gdpr)).Data;
        Assert.Equal(receipt.ReceiptId, erased.ReceiptId);
        Assert.Equal(DeviceEraser.CauseRequest, erased.Cause);
    }

    [Fact]
    public async Task EraseDeviceAsync_Should_DeleteItsQueuedPushes_When_TheDeliveryStageIsNotComposed()
    {
        // Admin verbs (`gdpr erase`) compose Projections and Purge but not Delivery, whose deletion hook clears
        // push_queue; a queued push of an erased device must not outlive it.
        await using var host = await PurgeHost.CreateAsync();
        var device = await host.RegisterAsync(PurgeHost.NewToken());
        var other = await host.RegisterAsync(PurgeHost.NewToken());
        var now = host.Clock.GetUtcNow();
        foreach (var id in new[] { device, other })
        {
            await using var cmd = host.DataSource.CreateCommand("""
                insert into push_queue (push_id, device_id, requested_at, not_before, expires_at, next_attempt_at)
                values ($1, $2, $3, $3, $3 + interval '1 day', $3)
                """);
            cmd.Parameters.Add(new() { Value = Guid.CreateVersion7() });
            cmd.Parameters.Add(new() { Value = id });
            cmd.Parameters.Add(new() { Value = now });
            await cmd.ExecuteNonQueryAsync();
        }

        var dry = await host.Get<DeviceEraser>().EraseDeviceAsync(device, DeviceEraser.CauseRequest, dryRun: true, CancellationToken.None);
        var receipt = await host.Get<DeviceEraser>().EraseDeviceAsync(device, DeviceEraser.CauseRequest, dryRun: false, CancellationToken.None);

        Assert.Equal(1, dry.Deleted["push_queue"]);
        Assert.Equal(1, receipt.Deleted["push_queue"]);
        Assert.Equal(1, receipt.Deleted["devices"]);
        Assert.Equal(0L, await host.ScalarAsync<long>("select count(*) from push_queue where device_id = $1", device));
        Assert.Equal(1L, await host.ScalarAsync<long>("select count(*) from push_queue where device_id = $1", other));
        Assert.False(await host.Get<DeviceLocator>().IsHeldAsync(device, CancellationToken.None));
    }
}
