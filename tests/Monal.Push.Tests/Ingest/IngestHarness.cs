using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest;
using Monal.Push.Ingest.Devices;
using Monal.Push.Ingest.Limiting;
using Monal.Push.Ingest.Registering;
using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ingest.Throttling;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Tests.Fixtures;
using Monal.Push.Projections;
using Monal.Push.Projections.Devices;
using Npgsql;

namespace Monal.Push.Tests.Ingest;

/// <summary>The real ingest handlers on the run's database (or on a given data source), built the way AddIngest builds them.</summary>
internal sealed class IngestHarness : IAsyncDisposable
{
    public const string Module = "monalProdiOS";
    public const string SandboxModule = "monalProdiOS-sandbox";
    public const string Domain = "example.org";

    private readonly ServiceProvider _metrics;

    private IngestHarness(
        NpgsqlDataSource dataSource, TimeProvider clock, TimeSpan window, int maxPending, int maxDevices, IDeviceLookup? lookup, string? defaultModule,
        LimitsOptions limits)
    {
        DataSource = dataSource;
        Clock = clock;
        Directory = new DeviceDirectory(dataSource, clock, Options.Create(new ProjectionsOptions()), NullLogger<DeviceDirectory>.Instance);
        var projection = new DeviceProjection(Directory);
        Store = TestLedger.Store(dataSource, clock: clock, inline: [projection], hooks: [projection]);
        Keys = new DataKeys(dataSource, TestLedger.MasterKey, clock);
        Hash = new KeyedHash(TestLedger.MasterKey);
        Lookup = lookup ?? new DirectoryDeviceLookup(Directory);
        Modules = new ConfiguredPushModules([Module, SandboxModule]);
        _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();
        Metrics = new IngestMetrics(_metrics.GetRequiredService<IMeterFactory>());
        Throttle = new PushThrottle(
            Options.Create(new ThrottleOptions { Window = window, MaxDevices = maxDevices }), clock, NullLogger<PushThrottle>.Instance);
        Limits = limits;
        Limiter = new DomainLimiter(Options.Create(limits), clock, Metrics, NullLogger<DomainLimiter>.Instance);
        Quota = new NewDeviceQuota(dataSource, Options.Create(limits), clock, Metrics, NullLogger<NewDeviceQuota>.Instance);
        Publish = new PublishHandler(Store, Keys, Hash, Lookup, Throttle, Limiter, Quota, Modules,
            Options.Create(new IngestOptions { MaxPendingAppends = maxPending, DefaultPushModule = defaultModule }), clock, Metrics, NullLogger<PublishHandler>.Instance);
        Registration = new RegistrationHandler(Store, Keys, Hash, Modules, Quota,
            Options.Create(new RegistrationOptions { PushModule = Module }), clock, Metrics, NullLogger<RegistrationHandler>.Instance);
    }

    public NpgsqlDataSource DataSource { get; }
    public TimeProvider Clock { get; }
    public DeviceDirectory Directory { get; }
    public EventStore Store { get; }
    public DataKeys Keys { get; }
    public KeyedHash Hash { get; }
    public IDeviceLookup Lookup { get; }
    public ConfiguredPushModules Modules { get; }
    public IngestMetrics Metrics { get; }
    public PushThrottle Throttle { get; }
    public LimitsOptions Limits { get; }
    public DomainLimiter Limiter { get; }
    public NewDeviceQuota Quota { get; }
    public PublishHandler Publish { get; }
    public RegistrationHandler Registration { get; }

    public static async Task<IngestHarness> CreateAsync(
        TimeProvider? clock = null,
        TimeSpan? window = null,
        NpgsqlDataSource? dataSource = null,
        int maxPending = 10_000,
        int maxDevices = 200_000,
        IDeviceLookup? lookup = null,
        string? defaultModule = null,
        LimitsOptions? limits = null)
    {
        if (dataSource is null)
        {
            dataSource = await TestDatabase.DataSourceAsync();
        }

        return new IngestHarness(dataSource, clock ?? new ManualClock(), window ?? TimeSpan.FromSeconds(5), maxPending, maxDevices, lookup, defaultModule,
            limits ?? Unlimited());
    }

    /// <summary>
    /// Limits no test reaches unless it is about them: tests of other concerns flood one domain, and every test of
    /// the run shares the database's new-device quota of <see cref="Domain"/>.
    /// </summary>
    public static LimitsOptions Unlimited() => new()
    {
        PublishesPerSecond = 1_000_000,
        PublishBurst = 1_000_000,
        MaxPendingPerDomain = 1_000_000,
        NewDevicesPerHour = 1_000_000_000,
        NewDeviceBurst = 1_000_000_000,
    };

    public static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public static PublishRequest Stateless(string token, string? module = Module) =>
        new(Guid.NewGuid().ToString("N"), "push.localhost", Domain, token, module, null, HasItem: true);

    /// <summary>A publish that names no push module and no secret (Monal 5.2.0's enable had no form).</summary>
    public static PublishRequest Unnamed(string node) =>
        new(Guid.NewGuid().ToString("N"), "push.localhost", Domain, node, null, null, HasItem: true);

    public static PublishRequest Registered(string node, string? secret) =>
        new(Guid.NewGuid().ToString("N"), "push.localhost", Domain, node, null, secret, HasItem: true);

    public Guid StatelessId(string token, string module = Module) => Hash.StatelessDeviceId(module, token);

    public async Task<IReadOnlyList<object>> EventsAsync(Guid deviceId) =>
        [.. (await Store.ReadStreamAsync(deviceId)).Select(e => e.Data)];

    public async Task<IReadOnlyList<PushRequested>> PushesAsync(Guid deviceId) =>
        [.. (await EventsAsync(deviceId)).OfType<PushRequested>()];

    /// <summary>Registers a node through the real handler and returns its secret.</summary>
    public async Task<(Guid Id, string Secret)> RegisterAsync(string? token = null)
    {
        var id = Guid.NewGuid();
        var reply = await Registration.RegisterAsync("apns", id.ToString(), token ?? NewToken(), Domain, "test", CancellationToken.None);
        Assert.True(reply.Result.Succeeded, reply.Result.ErrorText);
        return (id, reply.Result.Secret!);
    }

    /// <summary>Counts rows of a table whose text contains <paramref name="needle"/> (case-insensitively).</summary>
    public async Task<long> RowsContainingAsync(string table, string needle)
    {
        await using var cmd = DataSource.CreateCommand($"select count(*) from {table} t where t::text ilike '%' || $1 || '%'");
        cmd.Parameters.Add(new() { Value = needle });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        await Directory.DisposeAsync();
        await _metrics.DisposeAsync();
    }
}
