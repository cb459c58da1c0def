using System.Xml.Linq;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest.Component;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

public sealed class ComponentConnectionTests : IAsyncLifetime, IDisposable
{
    private const string Secret = "component-secret";
    private static string Publish(string id) =>
        $"<iq type='set' from='example.org' to='push.localhost' id='{id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>" +
        $"<publish node='node-{id}'><item><notification xmlns='urn:xmpp:push:0'/></item></publish></pubsub></iq>";

    private readonly FakePublishHandler _publish = new();
    private readonly FakeRegistrationHandler _registration = new();
    private readonly CancellationTokenSource _stop = new();
    private FakeXmppServer _server = FakeXmppServer.Start();
    private ComponentConnection? _connection;
    private Task? _running;

    private ComponentConnection Connection => _connection ?? throw new InvalidOperationException("Start the component first.");

    private ComponentConnection StartComponent(Action<ComponentOptions>? configure = null)
    {
        var options = new ComponentOptions
        {
            Port = _server.Port,
            Domain = "push.localhost",
            Secret = Secret,
            ReconnectMinDelay = TimeSpan.FromMilliseconds(20),
            ReconnectMaxDelay = TimeSpan.FromMilliseconds(200),
        };
        configure?.Invoke(options);
        var router = new StanzaRouter(_publish, _registration, NullLogger<StanzaRouter>.Instance);
        _connection = new ComponentConnection(
            Options.Create(options), router, TimeProvider.System, NullLogger<ComponentConnection>.Instance);
        _running = _connection.RunAsync(_stop.Token);
        return _connection;
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        using var cts = new CancellationTokenSource(FakeXmppServer.Timeout);
        while (!condition())
        {
            Assert.False(cts.IsCancellationRequested, "timed out waiting until " + what);
            await Task.Delay(10, CancellationToken.None);
        }
    }

    private async Task<FakeComponentSession> ConnectedSessionAsync(Action<ComponentOptions>? configure = null)
    {
        StartComponent(configure);
        var session = await _server.AcceptComponentAsync(Secret);
        Assert.Equal("push.localhost", session.ComponentDomain);
        await WaitUntil(() => Connection.IsConnected, "connected");
        return session;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_running is not null)
        {
            await _running.WaitAsync(FakeXmppServer.Timeout);
        }

        await _server.DisposeAsync();
    }

    public void Dispose() => _stop.Dispose();

    [Fact]
    public async Task RunAsync_Should_CompleteHandshakeAndAnswerPing_When_SecretIsRight()
    {
        await using var session = await ConnectedSessionAsync();

        await session.Write("<iq type='get' id='p1' from='localhost' to='push.localhost'><ping xmlns='urn:xmpp:ping'/></iq>").FlushAsync();

        var reply = await session.ExpectIqResultAsync("p1");
        Assert.Equal("localhost", (string?)reply.Attribute("to"));
        Assert.Equal(0, Connection.Reconnects);
    }

    [Fact]
    public async Task RunAsync_Should_RetryWithBackoffAndNotCrash_When_ServerRejectsTheSecret()
    {
        StartComponent();

        for (var attempt = 1; attempt <= 3; attempt++)
        {
            await using var rejected = await _server.AcceptAsync();
            await rejected.ExpectStreamHeaderAsync();
            await rejected.WriteStreamHeader().FlushAsync();
            Assert.NotEqual(rejected.ExpectedDigest("what-the-server-expects"), await rejected.ExpectHandshakeAsync());
            await rejected.WriteStreamError("not-authorized").WriteStreamClose().FlushAsync();
            await WaitUntil(() => Connection.HandshakeFailures == attempt, $"{attempt} handshake failures");
        }

        Assert.False(_running!.IsCompleted);
        Assert.False(Connection.IsConnected);
        await using var accepted = await _server.AcceptComponentAsync(Secret);
        await WaitUntil(() => Connection.IsConnected, "connected after the secret was fixed");
        Assert.True(Connection.Reconnects >= 3);
    }

    [Fact]
    public async Task RunAsync_Should_RetryAsRejected_When_ServerDropsTheConnectionAfterHandshake()
    {
        StartComponent();

        await using (var dropping = await _server.AcceptAsync())
        {
            await dropping.ExpectStreamHeaderAsync();
            await dropping.WriteStreamHeader().FlushAsync();
            await dropping.ExpectHandshakeAsync();
            dropping.Abort();
        }

        await using var accepted = await _server.AcceptComponentAsync(Secret);
        await WaitUntil(() => Connection.IsConnected, "connected");
        Assert.Equal(1, Connection.HandshakeFailures);
    }

    [Fact]
    public async Task RunAsync_Should_Reconnect_When_ServerRestarts()
    {
        var session = await ConnectedSessionAsync();
        var port = _server.Port;

        session.Abort();
        await session.DisposeAsync();
        await _server.DisposeAsync();
        await WaitUntil(() => !Connection.IsConnected, "disconnected");
        await WaitUntil(() => Connection.Reconnects >= 2, "a failed connection attempt while the server is down");
        _server = FakeXmppServer.Start(port);

        await using var restarted = await _server.AcceptComponentAsync(Secret);
        await WaitUntil(() => Connection.IsConnected, "reconnected");
        await restarted.Write("<iq type='get' id='p2' from='localhost' to='push.localhost'><ping xmlns='urn:xmpp:ping'/></iq>").FlushAsync();
        await restarted.ExpectIqResultAsync("p2");
    }

    [Fact]
    public async Task RunAsync_Should_Reconnect_When_ServerClosesTheStreamCleanly()
    {
        await using (var session = await ConnectedSessionAsync())
        {
            await session.WriteStreamClose().FlushAsync();
            await session.ExpectStreamCloseAsync();
        }

        await using var second = await _server.AcceptComponentAsync(Secret);
        await WaitUntil(() => Connection.IsConnected, "reconnected");
        Assert.Equal(0, Connection.HandshakeFailures);
    }

    [Fact]
    public async Task RunAsync_Should_SendStreamErrorAndReconnect_When_ServerSendsBadXml()
    {
        await using (var session = await ConnectedSessionAsync())
        {
            await session.Write("<iq type='get' id='x'><!-- a comment --></iq>").FlushAsync();
            await session.ExpectStreamCloseAsync("restricted-xml");
        }

        await using var second = await _server.AcceptComponentAsync(Secret);
        await WaitUntil(() => Connection.IsConnected, "reconnected");
    }

    [Fact]
    public async Task RunAsync_Should_SendPolicyViolation_When_StanzaExceedsMaxStanzaBytes()
    {
        await using var session = await ConnectedSessionAsync(o => o.MaxStanzaBytes = 4096);

        await session.Write($"<message from='example.org'><body>{new string('x', 64 * 1024)}</body></message>").FlushAsync();

        await session.ExpectStreamCloseAsync("policy-violation");
    }

    [Fact]
    public async Task RunAsync_Should_AnswerDiscoInfoAndRegisterCommand_When_ServerRelaysThem()
    {
        await using var session = await ConnectedSessionAsync();

        await session
            .Write("<iq type='get' id='d1' from='localhost' to='push.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
            .Write("<iq type='set' id='c1' from='user@localhost/monal' to='push.localhost'>" +
                "<command xmlns='http://jabber.org/protocol/commands' node='v1-register-push' action='execute'>" +
                "<x xmlns='jabber:x:data' type='submit'><field var='type'><value>apns</value></field>" +
                "<field var='node'><value>dev-uuid</value></field><field var='token'><value>apns-token</value></field></x>" +
                "</command></iq>")
            .FlushAsync();

        var info = await session.ExpectIqResultAsync("d1");
        Assert.Contains(info.Descendants(), e => (string?)e.Attribute("var") == "urn:xmpp:push:0");
        var command = await session.ExpectIqResultAsync("c1");
        Assert.Equal("user@localhost/monal", (string?)command.Attribute("to"));
        Assert.Contains(command.Descendants(XName.Get("value", "jabber:x:data")), v => v.Value == "the-secret");
        Assert.Equal(("register", "apns", "dev-uuid", "apns-token", "localhost"), Assert.Single(_registration.Calls));
    }

    public static TheoryData<string, string?, string?> Outcomes() => new()
    {
        { nameof(PublishOutcome.Accepted), null, null },
        { nameof(PublishOutcome.ItemNotFound), "cancel", "item-not-found" },
        { nameof(PublishOutcome.NotAuthorized), "auth", "not-authorized" },
        { nameof(PublishOutcome.BadRequest), "modify", "bad-request" },
        { nameof(PublishOutcome.InternalServerError), "wait", "internal-server-error" },
        { nameof(PublishOutcome.ResourceConstraint), "wait", "resource-constraint" },
    };

    [Theory]
    [MemberData(nameof(Outcomes))]
    public async Task RunAsync_Should_WriteTheMatchingIqReply_When_PublishHandlerReturnsOutcome(string outcome, string? type, string? condition)
    {
        _publish.Answer = _ => (PublishOutcome)typeof(PublishOutcome).GetProperty(outcome)!.GetValue(null)!;
        await using var session = await ConnectedSessionAsync();

        await session.Write(Captures.ReadText("prosody-default.iqs.xml")).FlushAsync();

        const string id = "953f48a5e88ce5be526cb075b8b34c32aa07d2966c16734fd1a87170ad76d77b";
        if (type is null)
        {
            await session.ExpectIqResultAsync(id);
        }
        else
        {
            await session.ExpectIqErrorAsync(id, type, condition!);
        }

        var request = Assert.Single(_publish.Received);
        Assert.Equal(("some-node", "s3cr3t-token", "localhost"), (request.Node, request.Secret, request.FromDomain));
    }

    [Fact]
    public async Task RunAsync_Should_AnswerWaitAndKeepTheLinkUp_When_PublishHandlerThrows()
    {
        _publish.Answer = _ => throw new InvalidOperationException("database is down");
        await using var session = await ConnectedSessionAsync();

        await session.Write(Publish("boom")).FlushAsync();
        await session.ExpectIqErrorAsync("boom", "wait", "internal-server-error");

        await session.Write("<iq type='get' id='p3' from='localhost' to='push.localhost'><ping xmlns='urn:xmpp:ping'/></iq>").FlushAsync();
        await session.ExpectIqResultAsync("p3");
        Assert.True(Connection.IsConnected);
        Assert.Equal(0, Connection.Reconnects);
    }

    [Fact]
    public async Task RunAsync_Should_HandleManyPublishesConcurrently_When_HandlerCompletesThemOutOfOrder()
    {
        const int count = 200;
        _publish.Hold = true;
        await using var session = await ConnectedSessionAsync();

        foreach (var i in Enumerable.Range(0, count))
        {
            session.Write(Publish($"id-{i}"));
        }

        await session.FlushAsync();

        // All are in the handler at once: none was answered before the next was read.
        await WaitUntil(() => _publish.HeldCount == count, $"{count} publishes in flight");
        Assert.Equal(count, Connection.InFlight);
        var outcomes = new Dictionary<string, PublishOutcome>();
        foreach (var (id, n) in _publish.HeldIds.OrderByDescending(x => x, StringComparer.Ordinal).Select((id, n) => (id, n)))
        {
            outcomes[id] = n % 3 == 0 ? PublishOutcome.ItemNotFound : PublishOutcome.Accepted;
            _publish.Release(id, outcomes[id]);
        }

        var seen = new HashSet<string>();
        for (var i = 0; i < count; i++)
        {
            var reply = await session.ExpectStanzaAsync();
            var id = (string)reply.Attribute("id")!;
            Assert.True(seen.Add(id));
            Assert.Equal(outcomes[id].IsAccepted ? "result" : "error", (string?)reply.Attribute("type"));
        }

        Assert.Equal(outcomes.Keys.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
        foreach (var request in _publish.Received)
        {
            Assert.Equal("node-" + request.Id, request.Node);
        }
    }

    [Fact]
    public async Task RunAsync_Should_StopReading_When_MaxInFlightIsReached()
    {
        _publish.Hold = true;
        await using var session = await ConnectedSessionAsync(o => o.MaxInFlight = 4);

        foreach (var i in Enumerable.Range(0, 10))
        {
            session.Write(Publish($"bp-{i}"));
        }

        await session.FlushAsync();
        await WaitUntil(() => _publish.HeldCount == 4, "4 publishes in flight");
        await WaitUntil(() => Connection.BackPressureWaits > 0, "reading stopped for a free slot");
        Assert.Equal(4, _publish.HeldCount);
        Assert.Equal(4, _publish.Received.Count);

        _publish.Release(_publish.HeldIds.First(), PublishOutcome.Accepted);
        await WaitUntil(() => _publish.Received.Count == 5, "a fifth publish read once a slot freed");
        Assert.Equal(4, _publish.HeldCount);

        _publish.Hold = false;
        while (_publish.HeldCount > 0 || _publish.Received.Count < 10)
        {
            foreach (var id in _publish.HeldIds)
            {
                _publish.Release(id, PublishOutcome.Accepted);
            }

            await Task.Delay(10);
        }

        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("result", (string?)(await session.ExpectStanzaAsync()).Attribute("type"));
        }
    }

    [Fact]
    public async Task RunAsync_Should_WriteInFlightRepliesThenCloseStream_When_Cancelled()
    {
        _publish.Hold = true;
        await using var session = await ConnectedSessionAsync();
        await session.Write(Publish("last")).FlushAsync();
        await WaitUntil(() => _publish.HeldCount == 1, "the publish in flight");

        await _stop.CancelAsync();
        await WaitUntil(() => Connection.IsDraining, "the session waiting for its in-flight publish");
        Assert.False(_running!.IsCompleted, "the component must wait for the in-flight publish");
        _publish.Release("last", PublishOutcome.Accepted);

        await session.ExpectIqResultAsync("last");
        await session.ExpectStreamCloseAsync();
        await _running.WaitAsync(FakeXmppServer.Timeout);
        Assert.False(Connection.IsConnected);
    }

    [Fact]
    public async Task RunAsync_Should_CloseWithinTheBound_When_HandlerNeverFinishes()
    {
        _publish.Hold = true;
        await using var session = await ConnectedSessionAsync(o => o.ShutdownTimeout = TimeSpan.FromMilliseconds(200));
        await session.Write(Publish("stuck")).FlushAsync();
        await WaitUntil(() => _publish.HeldCount == 1, "the publish in flight");

        await _stop.CancelAsync();

        await session.ExpectStreamCloseAsync();
        await _running!.WaitAsync(FakeXmppServer.Timeout);
    }

    [Fact]
    public async Task RunAsync_Should_IgnoreResultsAndMessages_When_ServerSendsThem()
    {
        await using var session = await ConnectedSessionAsync();

        await session
            .Write("<iq type='result' id='r1' from='localhost' to='push.localhost'/>")
            .Write("<message from='localhost' to='push.localhost'><body>hello</body></message>")
            .Write("<iq type='get' id='u1' from='localhost' to='push.localhost'><time xmlns='urn:xmpp:time'/></iq>")
            .FlushAsync();

        await session.ExpectIqErrorAsync("u1", "cancel", "service-unavailable");
    }
}
