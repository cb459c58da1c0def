using System.Net;
using System.Net.Sockets;
using Monal.Push.Ingest.Devices;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Ledger.Events;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.Tests.Ingest;

[Trait("Category", "Postgres")]
public sealed class PublishHandlerTests
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task HandleAsync_Should_CreateDeviceAndCommitPushBeforeAnswering_When_StatelessNodePublishesFirst()
    {
        var clock = new ManualClock();
        await using var ingest = await IngestHarness.CreateAsync(clock);
        var token = IngestHarness.NewToken();

        var outcome = await ingest.Publish.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None);

        Assert.True(outcome.IsAccepted);
        var id = ingest.StatelessId(token);
        var events = await ingest.EventsAsync(id);
        Assert.Equal(2, events.Count);
        var registered = Assert.IsType<DeviceRegistered>(events[0]);
        Assert.Equal(DeviceMode.Stateless, registered.Mode);
        Assert.Equal(IngestHarness.Module, registered.PushModule);
        Assert.Null(registered.SecretHash);
        Assert.Equal(IngestHarness.Domain, registered.Domain);
        Assert.NotEqual(token, registered.EncryptedToken);
        Assert.Equal(token, await ingest.Keys.DecryptAsync(id, registered.EncryptedToken));
        var push = Assert.IsType<PushRequested>(events[1]);
        Assert.Equal(id, push.DeviceId);
        Assert.Equal(IngestHarness.Domain, push.Domain);
        Assert.Null(push.NotBefore);
        Assert.Equal(clock.GetUtcNow() + TimeSpan.FromDays(1), push.ExpiresAt);
        var device = await ingest.Lookup.FindAsync(id, CancellationToken.None);
        Assert.NotNull(device);
        Assert.True(device.IsActive);
        Assert.Equal(DeviceMode.Stateless, device.Mode);
    }

    [Fact]
    public async Task HandleAsync_Should_NeverStoreTheRawToken_When_StatelessDeviceIsCreated()
    {
        await using var ingest = await IngestHarness.CreateAsync();
        var token = IngestHarness.NewToken();
        var upper = token.ToUpperInvariant();

        Assert.True((await ingest.Publish.HandleAsync(IngestHarness.Stateless(upper), CancellationToken.None)).IsAccepted);

        // The same device whatever the case the server used, and the token nowhere in clear (ilike: any case).
        Assert.Single((await ingest.EventsAsync(ingest.StatelessId(token))).OfType<DeviceRegistered>());
        foreach (var table in new[] { "events", "push_events", "devices", "streams", "data_keys" })
        {
            Assert.Equal(0, await ingest.RowsContainingAsync(table, token));
            Assert.Equal(0, await ingest.RowsContainingAsync(table, token[..16]));
        }
    }

    [Fact]
    public async Task HandleAsync_Should_AppendOnlyAPush_When_StatelessDeviceExistsAndWindowPassed()
    {
        var clock = new ManualClock();
        await using var ingest = await IngestHarness.CreateAsync(clock);
        var token = IngestHarness.NewToken();
        Assert.True((await ingest.Publish.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None)).IsAccepted);
        clock.Advance(Window);

        Assert.True((await ingest.Publish.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None)).IsAccepted);

        var events = await ingest.EventsAsync(ingest.StatelessId(token));
        Assert.Single(events.OfType<DeviceRegistered>());
        var pushes = events.OfType<PushRequested>().ToList();
        Assert.Equal(2, pushes.Count);
        Assert.All(pushes, p => Assert.Null(p.NotBefore));
    }

    [Fact]
    public async Task HandleAsync_Should_CoalesceIntoOneDelayedPush_When_PublishesArriveInsideTheWindow()
    {
        var clock = new ManualClock();
        await using var ingest = await IngestHarness.CreateAsync(clock);
        var token = IngestHarness.NewToken();
        var first = clock.GetUtcNow();

        var outcomes = new List<PublishOutcome>();
        for (var i = 0; i < 6; i++)
        {
            outcomes.Add(await ingest.Publish.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None));
            clock.Advance(TimeSpan.FromMilliseconds(500));
        }

        Assert.All(outcomes, o => Assert.True(o.IsAccepted));
        var pushes = await ingest.PushesAsync(ingest.StatelessId(token));
        Assert.Equal(2, pushes.Count);
        Assert.Null(pushes[0].NotBefore);
        Assert.Equal(first + Window, pushes[1].NotBefore);
        Assert.Equal(first + Window + TimeSpan.FromDays(1), pushes[1].ExpiresAt);

        // After the delayed push is due, a publish inside its window is delayed to that window's end.
        clock.Set(first + Window + TimeSpan.FromSeconds(1));
        Assert.True((await ingest.Publish.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None)).IsAccepted);
        pushes = await ingest.PushesAsync(ingest.StatelessId(token));
        Assert.Equal(3, pushes.Count);
        Assert.Equal(first + Window + Window, pushes[2].NotBefore);
    }

    [Theory]
    [InlineData("notAModule", null)]
    [InlineData(IngestHarness.Module, "not-hex-at-all-not-hex-at-all-not-hex-at-all-not-hex-at-all-xx")]
    [InlineData(IngestHarness.Module, "abcdef")]
    [InlineData(IngestHarness.Module, "abcdef0123456789abcdef0123456789a")]
    public async Task HandleAsync_Should_AnswerBadRequestAndStoreNothing_When_StatelessPublishIsMalformed(string module, string? node)
    {
        await using var ingest = await IngestHarness.CreateAsync();
        var token = node ?? IngestHarness.NewToken();

        var outcome = await ingest.Publish.HandleAsync(IngestHarness.Stateless(token, module), CancellationToken.None);

        Assert.Equal(PublishOutcome.BadRequest, outcome);
        Assert.Empty(await ingest.EventsAsync(ingest.StatelessId(token, module)));
    }

    [Fact]
    public async Task HandleAsync_Should_AcceptDurably_When_RegisteredNodeSendsItsSecret()
    {
        await using var ingest = await IngestHarness.CreateAsync();
        var (id, secret) = await ingest.RegisterAsync();

        var outcome = await ingest.Publish.HandleAsync(IngestHarness.Registered(id.ToString(), secret), CancellationToken.None);

        Assert.True(outcome.IsAccepted);
        // Read on another connection right after the answer: the push is committed, not merely queued.
        await using var cmd = ingest.DataSource.CreateCommand(
            "select count(*) from push_events where stream_id = $1 and type = 'push_requested.v1'");
        cmd.Parameters.Add(new() { Value = id });
        Assert.Equal(1L, await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task HandleAsync_Should_AnswerNotAuthorized_When_SecretIsWrong()
    {
        await using var ingest = await IngestHarness.CreateAsync();
        var (id, secret) = await ingest.RegisterAsync();

        var outcome = await ingest.Publish.HandleAsync(IngestHarness.Registered(id.ToString(), secret + "x"), CancellationToken.None);

        Assert.Equal(PublishOutcome.NotAuthorized, outcome);
        Assert.Empty(await ingest.PushesAsync(id));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task HandleAsync_Should_AnswerItemNotFound_When_RegisteredNodeIsUnknown(bool uuid)
    {
        await using var ingest = await IngestHarness.CreateAsync();
        var node = uuid ? Guid.NewGuid().ToString() : "some-node";

        var outcome = await ingest.Publish.HandleAsync(IngestHarness.Registered(node, "s3cr3t-token"), CancellationToken.None);

        Assert.Equal(PublishOutcome.ItemNotFound, outcome);
    }

    [Fact]
    public async Task HandleAsync_Should_AnswerItemNotFound_When_DeviceWasUnregistered()
    {
        await using var ingest = await IngestHarness.CreateAsync();
        var (id, secret) = await ingest.RegisterAsync();
        Assert.True((await ingest.Registration.UnregisterAsync("apns", id.ToString(), null, "test", CancellationToken.None)).Result.Succeeded);

        var outcome = await ingest.Publish.HandleAsync(IngestHarness.Registered(id.ToString(), secret), CancellationToken.None);

        Assert.Equal(PublishOutcome.ItemNotFound, outcome);
        Assert.Empty(await ingest.PushesAsync(id));
    }

    [Fact]
    public async Task HandleAsync_Should_AnswerItemNotFound_When_AppleInvalidatedTheToken()
    {
        var clock = new ManualClock();
        await using var ingest = await IngestHarness.CreateAsync(clock);
        var token = IngestHarness.NewToken();
        Assert.True((await ingest.Publish.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None)).IsAccepted);
        var id = ingest.StatelessId(token);
        clock.Advance(TimeSpan.FromMinutes(1));
        await ingest.Store.AppendAsync(id, "device", Monal.Push.Ledger.EventStore.ExpectedVersion.Any,
            [new TokenInvalidated(Guid.NewGuid(), id, "Unregistered", clock.GetUtcNow(), clock.GetUtcNow())]);
        clock.Advance(Window);

        var outcome = await ingest.Publish.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None);

        Assert.Equal(PublishOutcome.ItemNotFound, outcome);
        Assert.Single(await ingest.PushesAsync(id));
    }

    [Fact]
    public async Task HandleAsync_Should_AnswerItemNotFound_When_TheProjectionRefusesAStaleActiveDevice()
    {
        // A cache that still believes the device active: the inline projection refuses the push (MPG01).
        var clock = new ManualClock();
        await using var setup = await IngestHarness.CreateAsync(clock);
        var (id, secret) = await setup.RegisterAsync();
        Assert.True((await setup.Registration.UnregisterAsync("apns", id.ToString(), null, "test", CancellationToken.None)).Result.Succeeded);
        var stale = new FixedLookup(new DeviceSnapshot(id, DeviceMode.Registered, IngestHarness.Module, setup.Hash.HashSecret(secret), true));
        await using var ingest = await IngestHarness.CreateAsync(clock, lookup: stale);

        var outcome = await ingest.Publish.HandleAsync(IngestHarness.Registered(id.ToString(), secret), CancellationToken.None);

        Assert.Equal(PublishOutcome.ItemNotFound, outcome);
        Assert.Empty(await ingest.PushesAsync(id));
    }

    [Fact]
    public async Task HandleAsync_Should_AnswerBadRequestNamingTheSetting_When_NoModuleIsNamedAndNoDefaultIsSet()
    {
        await using var ingest = await IngestHarness.CreateAsync();
        var (id, _) = await ingest.RegisterAsync();
        var token = IngestHarness.NewToken();

        var known = await ingest.Publish.HandleAsync(IngestHarness.Unnamed(id.ToString()), CancellationToken.None);
        var unknown = await ingest.Publish.HandleAsync(IngestHarness.Unnamed(Guid.NewGuid().ToString()), CancellationToken.None);
        var tokenNode = await ingest.Publish.HandleAsync(IngestHarness.Unnamed(token), CancellationToken.None);

        Assert.Equal(PublishOutcome.BadRequest, known);
        Assert.Equal(PublishOutcome.ItemNotFound, unknown);
        // Never cancel for a token node: ejabberd drops the user's registration at the first non-wait error.
        Assert.Equal(StanzaErrorType.Modify, tokenNode.ErrorType);
        Assert.Equal("bad-request", tokenNode.Condition);
        Assert.Contains("Ingest:DefaultPushModule", tokenNode.Text, StringComparison.Ordinal);
        Assert.Empty(await ingest.PushesAsync(id));
        Assert.Empty(await ingest.EventsAsync(ingest.StatelessId(token)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task HandleAsync_Should_PushThroughTheDefaultModule_When_TheTokenPublishNamesNoModule(bool upperCase)
    {
        // Monal 5.2.0 enabled push with no form: the publish carries no pushModule, as with fpush's default module.
        await using var ingest = await IngestHarness.CreateAsync(defaultModule: IngestHarness.SandboxModule);
        var token = IngestHarness.NewToken();

        var outcome = await ingest.Publish.HandleAsync(
            IngestHarness.Unnamed(upperCase ? token.ToUpperInvariant() : token), CancellationToken.None);

        Assert.True(outcome.IsAccepted);
        var events = await ingest.EventsAsync(ingest.StatelessId(token, IngestHarness.SandboxModule));
        Assert.Equal(IngestHarness.SandboxModule, Assert.IsType<DeviceRegistered>(events[0]).PushModule);
        Assert.IsType<PushRequested>(events[1]);
        Assert.Empty(await ingest.EventsAsync(ingest.StatelessId(token)));
    }

    [Fact]
    public async Task HandleAsync_Should_StillCheckTheSecret_When_ADefaultModuleIsSetAndTheNodeIsRegistered()
    {
        await using var ingest = await IngestHarness.CreateAsync(defaultModule: IngestHarness.Module);
        var (id, secret) = await ingest.RegisterAsync();

        var withoutSecret = await ingest.Publish.HandleAsync(IngestHarness.Unnamed(id.ToString().ToUpperInvariant()), CancellationToken.None);
        var withSecret = await ingest.Publish.HandleAsync(IngestHarness.Registered(id.ToString().ToUpperInvariant(), secret), CancellationToken.None);

        Assert.Equal(PublishOutcome.BadRequest, withoutSecret);
        Assert.True(withSecret.IsAccepted);
        Assert.Single(await ingest.PushesAsync(id));
    }

    [Fact]
    public async Task HandleAsync_Should_AnswerWaitInternalServerError_When_StorageIsUnreachable()
    {
        await using var dataSource = NpgsqlDataSource.Create(
            $"Host=127.0.0.1;Port={ClosedPort()};Username=nobody;Database=none;Timeout=2;Pooling=false");
        await using var ingest = await IngestHarness.CreateAsync(dataSource: dataSource);

        var stateless = await ingest.Publish.HandleAsync(IngestHarness.Stateless(IngestHarness.NewToken()), CancellationToken.None);
        var registered = await ingest.Publish.HandleAsync(IngestHarness.Registered(Guid.NewGuid().ToString(), "s"), CancellationToken.None);

        Assert.Equal(PublishOutcome.InternalServerError, stateless);
        Assert.Equal(PublishOutcome.InternalServerError, registered);
        Assert.Equal(StanzaErrorTypeWait, stateless.ErrorType);
    }

    [Fact]
    public async Task HandleAsync_Should_AnswerResourceConstraint_When_TooManyAppendsArePending()
    {
        // A "database" that accepts the TCP connection and never answers: the first publish holds the only slot.
        using var blackHole = new TcpListener(IPAddress.Loopback, 0);
        blackHole.Start();
        var port = ((IPEndPoint)blackHole.LocalEndpoint).Port;
        await using var dataSource = NpgsqlDataSource.Create(
            $"Host=127.0.0.1;Port={port};Username=nobody;Database=none;Timeout=3;Pooling=false");
        await using var ingest = await IngestHarness.CreateAsync(dataSource: dataSource, maxPending: 1);

        var stuck = ingest.Publish.HandleAsync(IngestHarness.Stateless(IngestHarness.NewToken()), CancellationToken.None).AsTask();
        using var accepted = await blackHole.AcceptTcpClientAsync().WaitAsync(FakeXmppServer.Timeout);
        var refused = await ingest.Publish.HandleAsync(IngestHarness.Stateless(IngestHarness.NewToken()), CancellationToken.None);

        Assert.Equal(PublishOutcome.ResourceConstraint, refused);
        Assert.Equal(PublishOutcome.InternalServerError, await stuck.WaitAsync(FakeXmppServer.Timeout));
    }

    private static readonly StanzaErrorType StanzaErrorTypeWait = StanzaErrorType.Wait;

    private static int ClosedPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private sealed class FixedLookup(DeviceSnapshot snapshot) : IDeviceLookup
    {
        public ValueTask<DeviceSnapshot?> FindAsync(Guid deviceId, CancellationToken ct) =>
            ValueTask.FromResult<DeviceSnapshot?>(deviceId == snapshot.DeviceId ? snapshot : null);
    }
}
