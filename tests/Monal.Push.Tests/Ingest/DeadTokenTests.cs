using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Events;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

/// <summary>
/// A token Apple declared dead stays dead (migrations/0007): after 410 Unregistered, 400 BadDeviceToken or
/// DeviceTokenNotForTopic, and after the job erased the device, a publish to that token is answered
/// cancel/item-not-found (Prosody and ejabberd then drop the registration) and appends nothing for Apple.
/// Apple's timestamp is what Apple sends: in the past, before the device was first seen here.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class DeadTokenTests
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(5);

    public static TheoryData<string> Deaths => new() { "Unregistered", "ExpiredToken", "BadDeviceToken", "DeviceTokenNotForTopic" };

    [Theory]
    [MemberData(nameof(Deaths))]
    public async Task HandleAsync_Should_AnswerItemNotFoundAndStoreNothing_When_AppleDeclaredTheTokenDeadAndTheDeviceWasErased(string reason)
    {
        var clock = new ManualClock();
        await using var ingest = await IngestHarness.CreateAsync(clock);
        var token = IngestHarness.NewToken();
        var id = ingest.StatelessId(token);
        Assert.True((await ingest.Publish.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None)).IsAccepted);
        clock.Advance(TimeSpan.FromSeconds(1));
        await DeclareDeadAsync(ingest, id, reason, appleTimestamp: clock.GetUtcNow().AddDays(-3));
        clock.Advance(Window);

        var beforeErase = await ingest.Publish.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None);
        Assert.True(await ingest.Store.DeleteStreamAsync(id) > 0); // what the hourly job does
        clock.Advance(Window);
        var afterErase = await ingest.Publish.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None);
        clock.Advance(TimeSpan.FromDays(1));
        var dayLater = await ingest.Publish.HandleAsync(IngestHarness.Stateless(token.ToUpperInvariant()), CancellationToken.None);

        Assert.Equal(PublishOutcome.ItemNotFound, beforeErase);
        Assert.Equal(PublishOutcome.ItemNotFound, afterErase);
        Assert.Equal(PublishOutcome.ItemNotFound, dayLater);
        Assert.Empty(await ingest.Store.ReadStreamAsync(id));
        Assert.Equal(0L, await CountAsync(ingest, "select count(*) from data_keys where device_id = $1", id));
        Assert.Equal(0L, await CountAsync(ingest, "select count(*) from devices where device_id = $1", id));
        Assert.Equal(1L, await CountAsync(ingest, "select count(*) from dead_tokens where device_id = $1", id));
        foreach (var part in new[] { token, token[..16], token[^16..] })
        {
            Assert.Equal(0, await ingest.RowsContainingAsync("dead_tokens", part));
        }
    }

    [Fact]
    public async Task HandleAsync_Should_NotUseUpTheDomainsNewDeviceQuota_When_AServerKeepsPublishingToAnErasedDeadToken()
    {
        // A server that ignores item-not-found (or publishes to dead tokens on purpose) must not cost the ledger a
        // refused append each time, nor take the new-device quota its genuine new devices need.
        var clock = new ManualClock();
        var limits = IngestHarness.Unlimited();
        limits.NewDeviceBurst = 4;
        limits.NewDevicesPerHour = 4;
        await using var ingest = await IngestHarness.CreateAsync(clock, limits: limits);
        var domain = $"stubborn-{Guid.NewGuid():N}.example";
        PublishRequest From(string token) => IngestHarness.Stateless(token) with { FromDomain = domain };
        var dead = IngestHarness.NewToken();
        var id = ingest.StatelessId(dead);
        Assert.True((await ingest.Publish.HandleAsync(From(dead), CancellationToken.None)).IsAccepted);
        await DeclareDeadAsync(ingest, id, "Unregistered", clock.GetUtcNow().AddDays(-1));
        Assert.True(await ingest.Store.DeleteStreamAsync(id) > 0);

        var again = new List<PublishOutcome>();
        for (var i = 0; i < 20; i++)
        {
            clock.Advance(Window);
            again.Add(await ingest.Publish.HandleAsync(From(dead), CancellationToken.None));
        }

        var fresh = new[] { IngestHarness.NewToken(), IngestHarness.NewToken() };
        var freshOutcomes = new List<PublishOutcome>();
        foreach (var token in fresh)
        {
            freshOutcomes.Add(await ingest.Publish.HandleAsync(From(token), CancellationToken.None));
        }

        Assert.All(again, o => Assert.Equal(PublishOutcome.ItemNotFound, o));
        Assert.All(freshOutcomes, o => Assert.True(o.IsAccepted, o.Condition));
        Assert.Equal(0L, await CountAsync(ingest, "select count(*) from data_keys where device_id = $1", id));
        Assert.Equal(0L, await CountAsync(ingest, "select count(*) from devices where device_id = $1", id));

        // Remembered for a while, not forever: later, the database is asked again, and still says dead.
        clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(PublishOutcome.ItemNotFound, await ingest.Publish.HandleAsync(From(dead), CancellationToken.None));
        Assert.Equal(0L, await CountAsync(ingest, "select count(*) from devices where device_id = $1", id));
    }

    [Fact]
    public async Task HandleAsync_Should_KeepOtherModulesOfTheTokenAlive_When_AppleRejectedItForOneTopic()
    {
        var clock = new ManualClock();
        await using var ingest = await IngestHarness.CreateAsync(clock);
        var token = IngestHarness.NewToken();
        var production = ingest.StatelessId(token);
        Assert.True((await ingest.Publish.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None)).IsAccepted);
        await DeclareDeadAsync(ingest, production, "DeviceTokenNotForTopic", clock.GetUtcNow());
        await ingest.Store.DeleteStreamAsync(production);

        var sandbox = await ingest.Publish.HandleAsync(IngestHarness.Stateless(token, IngestHarness.SandboxModule), CancellationToken.None);

        Assert.True(sandbox.IsAccepted);
        Assert.Single(await ingest.PushesAsync(ingest.StatelessId(token, IngestHarness.SandboxModule)));
    }

    [Fact]
    public async Task HandleAsync_Should_InvalidateAStatelessDevice_When_ApplesTimestampIsBeforeItsFirstPublish()
    {
        // Apple's timestamp says since when the token is invalid: typically before we ever saw the device.
        var clock = new ManualClock();
        await using var ingest = await IngestHarness.CreateAsync(clock);
        var token = IngestHarness.NewToken();
        var id = ingest.StatelessId(token);
        Assert.True((await ingest.Publish.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None)).IsAccepted);

        await DeclareDeadAsync(ingest, id, "Unregistered", appleTimestamp: clock.GetUtcNow().AddDays(-30));

        Assert.Equal(1L, await CountAsync(ingest,
            "select count(*) from devices where device_id = $1 and invalidated_at is not null and encrypted_token is null", id));
    }

    private static async Task DeclareDeadAsync(IngestHarness ingest, Guid id, string reason, DateTimeOffset appleTimestamp)
    {
        var now = ingest.Clock.GetUtcNow();
        object death = reason is "Unregistered" or "ExpiredToken"
            ? new TokenInvalidated(Guid.CreateVersion7(), id, reason, appleTimestamp, now)
            : new TokenRejected(Guid.CreateVersion7(), id, reason, now);
        await ingest.Store.AppendAsync(id, "device", ExpectedVersion.Any, [death]);
    }

    private static async Task<long> CountAsync(IngestHarness ingest, string sql, Guid id)
    {
        await using var cmd = ingest.DataSource.CreateCommand(sql);
        cmd.Parameters.Add(new() { Value = id });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }
}
