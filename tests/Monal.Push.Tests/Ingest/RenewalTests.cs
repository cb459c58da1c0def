using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Events;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

/// <summary>
/// A registration that is renewed keeps what the policy lists (the token, the registration time, the latest renewal
/// time, the secret) and nothing more: a replaced token becomes unreadable, and only the latest renewal stays.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class RenewalTests
{
    [Fact]
    public async Task RegisterAsync_Should_MakeTheReplacedTokenUnreadable_When_TheDeviceRegistersANewToken()
    {
        var clock = new ManualClock();
        await using var ingest = await IngestHarness.CreateAsync(clock);
        var oldToken = IngestHarness.NewToken();
        var (id, secret) = await ingest.RegisterAsync(oldToken);
        var original = Assert.IsType<DeviceRegistered>((await ingest.EventsAsync(id))[0]);
        clock.Advance(TimeSpan.FromHours(1));
        var newToken = IngestHarness.NewToken();

        var reply = await ingest.Registration.RegisterAsync("apns", id.ToString().ToUpperInvariant(), newToken, IngestHarness.Domain, "test", CancellationToken.None);

        Assert.Equal(secret, reply.Result.Secret);
        await Assert.ThrowsAsync<DataKeyShreddedException>(() => ingest.Keys.DecryptAsync(id, original.EncryptedToken));
        await Assert.ThrowsAsync<DataKeyShreddedException>(() => ingest.Keys.DecryptAsync(id, original.EncryptedSecret!));
        // A fresh reader (another process) sees the same: only the new generation is stored.
        var elsewhere = new DataKeys(ingest.DataSource, TestLedger.MasterKey, clock);
        await Assert.ThrowsAsync<DataKeyShreddedException>(() => elsewhere.DecryptAsync(id, original.EncryptedToken));
        Assert.Equal(newToken, await elsewhere.DecryptAsync(id, await DeviceTokenAsync(ingest, id)));
        Assert.Equal(1L, await ScalarAsync(ingest, "select count(*) from data_keys where device_id = $1", id));
        var publish = await ingest.Publish.HandleAsync(IngestHarness.Registered(id.ToString(), secret), CancellationToken.None);
        Assert.True(publish.IsAccepted);
    }

    [Fact]
    public async Task RegisterAsync_Should_KeepOnlyTheLatestRenewal_When_TheDeviceRegistersAgainAndAgain()
    {
        var clock = new ManualClock();
        await using var ingest = await IngestHarness.CreateAsync(clock);
        var token = IngestHarness.NewToken();
        var (id, secret) = await ingest.RegisterAsync(token);
        string? latestToken = null;
        for (var i = 0; i < 4; i++)
        {
            clock.Advance(TimeSpan.FromDays(1));
            latestToken = i % 2 == 0 ? token : IngestHarness.NewToken();
            var reply = await ingest.Registration.RegisterAsync("apns", id.ToString(), latestToken, IngestHarness.Domain, "test", CancellationToken.None);
            Assert.Equal(secret, reply.Result.Secret);
        }

        var events = await ingest.EventsAsync(id);
        Assert.Equal(2, events.Count);
        Assert.IsType<DeviceRegistered>(events[0]);
        var renewed = Assert.IsType<RegistrationRenewed>(events[1]);
        Assert.Equal(clock.GetUtcNow(), renewed.RenewedAt);
        Assert.Equal(latestToken, await ingest.Keys.DecryptAsync(id, renewed.EncryptedToken));
        Assert.Equal(secret, await ingest.Keys.DecryptAsync(id, renewed.EncryptedSecret!));
        Assert.Equal(clock.GetUtcNow(), await RenewedAtAsync(ingest, id));
    }

    [Fact]
    public async Task RegisterAsync_Should_KeepTheKey_When_TheTokenIsTheSame()
    {
        var clock = new ManualClock();
        await using var ingest = await IngestHarness.CreateAsync(clock);
        var token = IngestHarness.NewToken();
        var (id, _) = await ingest.RegisterAsync(token);
        var original = Assert.IsType<DeviceRegistered>((await ingest.EventsAsync(id))[0]);
        clock.Advance(TimeSpan.FromHours(1));

        await ingest.Registration.RegisterAsync("apns", id.ToString(), token, IngestHarness.Domain, "test", CancellationToken.None);

        Assert.Equal(token, await ingest.Keys.DecryptAsync(id, original.EncryptedToken));
        Assert.Equal(1L, await ScalarAsync(ingest, "select count(*) from data_keys where device_id = $1 and generation = 1", id));
    }

    private static async Task<string> DeviceTokenAsync(IngestHarness ingest, Guid id)
    {
        await using var cmd = ingest.DataSource.CreateCommand("select encrypted_token from devices where device_id = $1");
        cmd.Parameters.Add(new() { Value = id });
        return (string)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task<DateTimeOffset> RenewedAtAsync(IngestHarness ingest, Guid id)
    {
        await using var cmd = ingest.DataSource.CreateCommand("select renewed_at from devices where device_id = $1");
        cmd.Parameters.Add(new() { Value = id });
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return reader.GetFieldValue<DateTimeOffset>(0);
    }

    private static async Task<long> ScalarAsync(IngestHarness ingest, string sql, Guid id)
    {
        await using var cmd = ingest.DataSource.CreateCommand(sql);
        cmd.Parameters.Add(new() { Value = id });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }
}
