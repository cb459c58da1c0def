using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Schema;
using Monal.Push.Projections;
using Monal.Push.Projections.Daemon;
using Monal.Push.Purge;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.Tests.Purge;

/// <summary>
/// A database of its own (purges are global), migrated, and a host composed with AddLedger + AddProjections +
/// AddPurge exactly as `serve` composes them, on an injected ManualClock. The read models are the real ones: the
/// device projection runs inline in every append and erases with the stream (deletion hooks); the async push log
/// and domain usage are applied by the projection daemon's own catch-up (<see cref="ProjectAsync"/>), run by the
/// builders below, instead of its background loop, so a test knows when they have caught up.
/// </summary>
public sealed class PurgeHost : IAsyncDisposable
{
    private readonly SemaphoreSlim _projecting = new(1, 1);
    private bool _ownsDataPath;

    public const string Module = "monalProdiOS";
    public static readonly string MasterKeyBase64 = Convert.ToBase64String(TestLedger.MasterKey.Derive("purge-tests"));

    private PurgeHost(string connectionString, NpgsqlDataSource dataSource, string dataPath, ManualClock clock, IHost host)
    {
        ConnectionString = connectionString;
        DataSource = dataSource;
        DataPath = dataPath;
        Clock = clock;
        Host = host;
    }

    public string ConnectionString { get; }
    public NpgsqlDataSource DataSource { get; }
    public string DataPath { get; }
    public ManualClock Clock { get; }
    public IHost Host { get; }
    public IServiceProvider Services => Host.Services;
    public EventStore Store => Services.GetRequiredService<EventStore>();
    public DataKeys Keys => Services.GetRequiredService<DataKeys>();
    public KeyedHash Hash => Services.GetRequiredService<KeyedHash>();
    public T Get<T>() where T : notnull => Services.GetRequiredService<T>();

    /// <summary>A fresh migrated database and its connection string.</summary>
    public static async Task<string> NewDatabaseAsync()
    {
        var cs = await TestDatabase.CreateEmptyDatabaseAsync();
        await using var ds = NpgsqlDataSource.Create(cs);
        await new SchemaMigrator(ds, NullLogger<SchemaMigrator>.Instance).MigrateAsync(MigrationSource.Embedded());
        return cs;
    }

    public static async Task<PurgeHost> CreateAsync(
        string? connectionString = null,
        ManualClock? clock = null,
        bool scheduler = false,
        string? dataPath = null,
        IDictionary<string, string?>? settings = null)
    {
        connectionString ??= await NewDatabaseAsync();
        clock ??= new ManualClock();
        var ownsDataPath = dataPath is null;
        dataPath ??= Directory.CreateTempSubdirectory("monal-purge-").FullName;
        var config = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Ledger"] = connectionString,
            ["Data:Path"] = dataPath,
            ["Ledger:MasterKey"] = MasterKeyBase64,
            ["Ledger:GroupCommit"] = "false",
            ["Retention:Scheduler"] = scheduler ? "true" : "false",
            ["Retention:BatchSize"] = "7",
            ["Projections:RunDaemon"] = "false",
            [$"PushModules:{Module}:Topic"] = "im.monal.test",
            ["PushModules:monalAlpha:Topic"] = "im.monal.alpha",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>())
        {
            config[k] = v;
        }

        var builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(config);
        builder.Services.AddLogging();
        builder.Services.AddSingleton<TimeProvider>(clock);
        builder.Services.AddLedger(builder.Configuration);
        builder.Services.AddProjections(builder.Configuration);
        builder.Services.AddPurge(builder.Configuration);
        var host = builder.Build();
        await host.StartAsync();
        return new PurgeHost(connectionString, host.Services.GetRequiredService<NpgsqlDataSource>(), dataPath, clock, host)
        {
            _ownsDataPath = ownsDataPath,
        };
    }

    public async ValueTask DisposeAsync()
    {
        await Host.StopAsync();
        Host.Dispose();
        _projecting.Dispose();
        if (_ownsDataPath)
        {
            try
            {
                Directory.Delete(DataPath, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: a temp folder left behind is not a test failure.
            }
        }
    }

    /// <summary>Applies every event appended so far to the async read models (push_log, domain usage).</summary>
    public async Task ProjectAsync()
    {
        var daemon = Get<ProjectionDaemon>();
        await _projecting.WaitAsync();
        try
        {
            foreach (var projection in Services.GetServices<IAsyncProjection>())
            {
                await daemon.CatchUpAsync(projection);
            }
        }
        finally
        {
            _projecting.Release();
        }
    }

    // ---- builders ----

    public static string NewToken() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    /// <summary>Registers a device (registered mode) with a token; returns its id.</summary>
    public async Task<Guid> RegisterAsync(string token, string domain = "example.org", Guid? id = null)
    {
        var deviceId = id ?? Guid.CreateVersion7();
        var sealedToken = await Keys.EncryptAsync(deviceId, token);
        // As RegistrationHandler stores it: hashed to check publishes, encrypted to hand back on re-registration.
        await Store.AppendAsync(deviceId, "device", ExpectedVersion.Any,
            [new DeviceRegistered(deviceId, DeviceMode.Registered, Module, sealedToken, Hash.HashSecret("s3cret"), domain, Clock.GetUtcNow(),
                await Keys.EncryptAsync(deviceId, "s3cret"))]);
        return deviceId;
    }

    /// <summary>A stateless device: its id is derived from module and token.</summary>
    public async Task<Guid> RegisterStatelessAsync(string token, string domain = "example.org")
    {
        var deviceId = Hash.StatelessDeviceId(Module, token);
        var sealedToken = await Keys.EncryptAsync(deviceId, token);
        await Store.AppendAsync(deviceId, "device", ExpectedVersion.Any,
            [new DeviceRegistered(deviceId, DeviceMode.Stateless, Module, sealedToken, null, domain, Clock.GetUtcNow())]);
        return deviceId;
    }

    /// <summary>A push as the pipeline records it: its events in the ledger, then its push-log row.</summary>
    public async Task<Guid> PushAsync(Guid deviceId, string domain = "example.org", bool delivered = true)
    {
        var pushId = Guid.CreateVersion7();
        var now = Clock.GetUtcNow();
        await Store.AppendAsync(deviceId, "device", ExpectedVersion.Any, [new PushRequested(pushId, deviceId, domain, now, now.AddDays(1))]);
        if (delivered)
        {
            await Store.AppendAsync(deviceId, "device", ExpectedVersion.Any, [new PushDelivered(pushId, deviceId, Guid.NewGuid(), now, 12.5)]);
        }

        await ProjectAsync();
        return pushId;
    }

    public async Task<T> ScalarAsync<T>(string sql, params object[] args)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    public async Task<IReadOnlyList<RecordedEvent>> SystemEventsAsync(Guid stream) => await Store.ReadStreamAsync(stream);
}
