using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Delivery.Dispatching;
using Monal.Push.Delivery.PushModules;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.MockApns;
using Monal.Push.Tests.Fixtures;
using Monal.Push.Projections;
using Monal.Push.Projections.Devices;
using Npgsql;

namespace Monal.Push.Tests.Delivery.Dispatching;

// One database of its own (dispatchers poll the whole queue), one mock APNs and the provider key; nodes are what a
// `serve` process would be: an event store with the queue projection, push modules and a dispatcher.
internal sealed class DispatchHarness : IAsyncDisposable
{
    public const string Module = "monalProdiOS";
    public const string Topic = "im.monal.test";
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly ProviderKeyFile _key;
    private readonly List<DispatchNode> _nodes = [];

    private DispatchHarness(NpgsqlDataSource dataSource, MockApnsServer mock, ProviderKeyFile key)
    {
        DataSource = dataSource;
        Mock = mock;
        _key = key;
        Keys = new DataKeys(dataSource, TestLedger.MasterKey, TimeProvider.System);
        Directory = new DeviceDirectory(dataSource, TimeProvider.System, Options.Create(new ProjectionsOptions()),
            NullLogger<DeviceDirectory>.Instance);
    }

    // Devices are written straight into the devices read model below (as DeviceProjection would leave them), and
    // the dispatcher reads them through the real directory.
    public DeviceDirectory Directory { get; }

    public NpgsqlDataSource DataSource { get; }

    public MockApnsServer Mock { get; }

    public DataKeys Keys { get; }

    // Every send by any node, as the client saw it: no apns-id may be in flight twice at once.
    public SendProbe Probe { get; } = new();

    public static async Task<DispatchHarness> CreateAsync(bool tls = false)
    {
        var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        var key = new ProviderKeyFile();
        var mock = await MockApnsServer.StartAsync(new MockApnsOptions
        {
            UseTls = tls,
            Topic = Topic,
            ProviderPublicKeyPem = key.PublicKeyPem,
            KeyId = key.KeyId,
            TeamId = key.TeamId,
        });
        return new DispatchHarness(dataSource, mock, key);
    }

    public DispatchNode Node(
        Action<DeliveryOptions>? configure = null, string topic = Topic, TimeSpan? requestTimeout = null, TimeSpan? deferredLinger = null)
    {
        var options = new DeliveryOptions
        {
            LeaseDuration = TimeSpan.FromSeconds(3),
            LeaseSafetyMargin = TimeSpan.FromSeconds(1),
            PollInterval = TimeSpan.FromMilliseconds(100),
            RetryBaseDelay = TimeSpan.FromMilliseconds(100),
            RetryMaxDelay = TimeSpan.FromMilliseconds(400),
            ShutdownTimeout = TimeSpan.FromSeconds(10),
        };
        configure?.Invoke(options);
        var modules = new PushModulesOptions();
        modules.Modules[Module] = new PushModuleOptions
        {
            Topic = topic,
            TeamId = _key.TeamId,
            KeyId = _key.KeyId,
            KeyFile = _key.Path,
            Endpoint = Mock.Endpoint.ToString(),
        };
        var registry = new PushModuleRegistry(modules, TimeProvider.System, NullLoggerFactory.Instance, o => o with
        {
            ServerCertificateValidation = Mock.ServerCertificateValidation,
            RequestTimeout = requestTimeout ?? TimeSpan.FromSeconds(20),
            HandlerFactory = inner => new SendProbeHandler(Probe, inner),
        });
        var node = new DispatcherNode();
        var projection = new DeliveryQueueProjection(node, Options.Create(options));
        var store = TestLedger.Store(DataSource, inline: [projection], hooks: [projection], deferredLinger: deferredLinger);
        var metrics = new DeliveryMetrics();
        var dispatcher = new PushDispatcher(store, registry, Keys, new DirectoryDeviceLookup(Directory), node, Options.Create(options),
            TimeProvider.System, new KeyedHash(TestLedger.MasterKey), metrics, NullLogger<PushDispatcher>.Instance);
        var result = new DispatchNode(store, dispatcher, registry, metrics);
        _nodes.Add(result);
        return result;
    }

    public static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    // A device row as Projections' DeviceProjection would leave it, with the token encrypted under the device's key.
    public async Task<(Guid DeviceId, string Token)> AddDeviceAsync(string? token = null, string module = Module, bool active = true)
    {
        var id = Guid.CreateVersion7();
        token ??= NewToken();
        var encrypted = await Keys.EncryptAsync(id, token);
        await using var cmd = DataSource.CreateCommand("""
            insert into devices (device_id, mode, push_module, encrypted_token, registered_at, unregistered_at)
            values ($1, 'stateless', $2, $3, now(), case when $4 then null else now() end)
            """);
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = module });
        cmd.Parameters.Add(new() { Value = encrypted });
        cmd.Parameters.Add(new() { Value = active });
        await cmd.ExecuteNonQueryAsync();
        return (id, token);
    }

    public static async Task<Guid> RequestAsync(EventStore store, Guid deviceId, DateTimeOffset? notBefore = null, TimeSpan? expiresIn = null)
    {
        var pushId = Guid.CreateVersion7();
        var now = DateTimeOffset.UtcNow;
        await store.AppendAsync(deviceId, "device", ExpectedVersion.Any,
            [new PushRequested(pushId, deviceId, "example.org", now, now + (expiresIn ?? TimeSpan.FromHours(1)), notBefore)]);
        return pushId;
    }

    // The outcome events of a push, once a final one is in the ledger.
    public static async Task<IReadOnlyList<object>> WaitForFinalAsync(EventStore store, Guid deviceId, Guid pushId, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Patience);
        while (true)
        {
            var outcomes = await OutcomesAsync(store, deviceId, pushId);
            if (outcomes.Any(IsFinal))
            {
                return outcomes;
            }

            await Task.Delay(50, cts.Token);
        }
    }

    public static async Task<IReadOnlyList<object>> OutcomesAsync(EventStore store, Guid deviceId, Guid pushId) =>
        [.. (await store.ReadStreamAsync(deviceId)).Select(e => e.Data).Where(d => d switch
        {
            PushDelivered x => x.PushId == pushId,
            PushFailed x => x.PushId == pushId,
            TokenInvalidated x => x.PushId == pushId,
            TokenRejected x => x.PushId == pushId,
            _ => false,
        })];

    public static bool IsFinal(object outcome) => outcome is PushDelivered or TokenInvalidated or TokenRejected or PushFailed { Transient: false };

    public async Task<long> QueueCountAsync(Guid? pushId = null)
    {
        await using var cmd = DataSource.CreateCommand(pushId is null
            ? "select count(*) from push_queue"
            : "select count(*) from push_queue where push_id = $1");
        if (pushId is not null)
        {
            cmd.Parameters.Add(new() { Value = pushId.Value });
        }

        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    public async Task<long> CountEventsAsync(string type)
    {
        await using var cmd = DataSource.CreateCommand("select count(*) from push_events where type = $1");
        cmd.Parameters.Add(new() { Value = type });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    public async Task<(string? ClaimedBy, DateTimeOffset? ClaimedUntil, int Attempts)> QueueRowAsync(Guid pushId)
    {
        await using var cmd = DataSource.CreateCommand("select claimed_by, claimed_until, attempts from push_queue where push_id = $1");
        cmd.Parameters.Add(new() { Value = pushId });
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), "the push should be queued");
        return (reader.IsDBNull(0) ? null : reader.GetString(0),
            reader.IsDBNull(1) ? null : reader.GetFieldValue<DateTimeOffset>(1),
            reader.GetInt32(2));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }

        await Mock.DisposeAsync();
        await Directory.DisposeAsync();
        await DataSource.DisposeAsync();
        _key.Dispose();
    }
}

internal sealed class DispatchNode(EventStore store, PushDispatcher dispatcher, PushModuleRegistry registry, DeliveryMetrics metrics) : IAsyncDisposable
{
    private bool _started;
    private bool _stopped;

    public EventStore Store { get; } = store;

    internal PushDispatcher Dispatcher { get; } = dispatcher;

    public async Task<DispatchNode> StartAsync()
    {
        await Dispatcher.StartAsync(CancellationToken.None);
        _started = true;
        return this;
    }

    /// <summary>
    /// Waits until the poller has completed <paramref name="passes"/> more passes over the queue: after that, whatever
    /// was due has been claimed. A test that asserts "nothing more was sent" waits for this, not for a fixed time.
    /// </summary>
    public async Task WaitForPollsAsync(int passes = 2)
    {
        var target = Dispatcher.Polls + passes;
        using var cts = new CancellationTokenSource(DispatchHarness.Patience);
        while (Dispatcher.Polls < target)
        {
            await Task.Delay(10, cts.Token);
        }
    }

    /// <summary>Waits until a stop has begun: new work is refused, sends in flight are being waited for.</summary>
    public async Task WaitUntilStoppingAsync()
    {
        using var cts = new CancellationTokenSource(DispatchHarness.Patience);
        while (!Dispatcher.IsStopping)
        {
            await Task.Delay(10, cts.Token);
        }
    }

    public async Task StopAsync()
    {
        _stopped = true;
        await Dispatcher.StopAsync(CancellationToken.None);
    }

    public async Task KillAsync()
    {
        _stopped = true;
        await Dispatcher.AbandonAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_started && !_stopped)
        {
            await StopAsync();
        }

        Dispatcher.Dispose();
        await Store.DisposeAsync();
        registry.Dispose();
        metrics.Dispose();
    }
}

// Records every request's apns-id while it is in flight on the client, across nodes.
internal sealed class SendProbe
{
    private readonly ConcurrentDictionary<string, int> _inFlight = new();
    private readonly ConcurrentBag<string> _overlaps = [];
    private readonly ConcurrentBag<string> _sent = [];

    public IReadOnlyCollection<string> Overlaps => _overlaps;

    public IReadOnlyCollection<string> Sent => _sent;

    internal void Begin(string apnsId)
    {
        _sent.Add(apnsId);
        if (!_inFlight.TryAdd(apnsId, 1))
        {
            _overlaps.Add(apnsId);
        }
    }

    internal void End(string apnsId) => _inFlight.TryRemove(apnsId, out _);
}

internal sealed class SendProbeHandler(SendProbe probe, HttpMessageHandler inner) : DelegatingHandler(inner)
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var apnsId = request.Headers.TryGetValues("apns-id", out var values) ? values.First() : "";
        probe.Begin(apnsId);
        try
        {
            var response = await base.SendAsync(request, cancellationToken);
            // The answer is read after this returns; buffering it here keeps "in flight" honest.
            await response.Content.LoadIntoBufferAsync(cancellationToken);
            return response;
        }
        finally
        {
            probe.End(apnsId);
        }
    }
}
