using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Cli.Hosting;
using Monal.Push.Load.Listening;
using Monal.Push.MockApns;
using Monal.Push.Tests.Delivery;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// `serve` (the real host, in this process) on a database of its own, connected as the component of the load
/// generator's XEP-0114 server side, delivering to the mock APNs over h2c. The test plays the XMPP server.
/// </summary>
internal sealed class ServeHarness : IAsyncDisposable
{
    public const string Domain = "push.harness.test";
    private const string Secret = "s3cret";

    private readonly ProviderKeyFile _key;
    private readonly ComponentServer _xmpp;

    private ServeHarness(ProviderKeyFile key, MockApnsServer apns, ComponentServer xmpp, string connectionString, string dataPath, string[] switches)
    {
        _key = key;
        Apns = apns;
        _xmpp = xmpp;
        ConnectionString = connectionString;
        DataPath = dataPath;
        Switches = switches;
        Db = NpgsqlDataSource.Create(connectionString);
    }

    public MockApnsServer Apns { get; }

    public string ConnectionString { get; }

    public string DataPath { get; }

    public string[] Switches { get; }

    public NpgsqlDataSource Db { get; }

    public MonalHost? Host { get; private set; }

    public ComponentLink? Link { get; private set; }

    public ConcurrentDictionary<string, Reply> Replies { get; } = new();

    /// <summary>When each reply arrived (<see cref="System.Diagnostics.Stopwatch"/> timestamps), by IQ id.</summary>
    public ConcurrentDictionary<string, long> ReplyTimes { get; } = new();

    /// <summary>Reads the current link's replies; ends when `serve` closes its stream.</summary>
    public Task RepliesRead { get; private set; } = Task.CompletedTask;

    /// <param name="apnsLatency">How long the mock APNs takes to answer.</param>
    /// <param name="connectionString">A database of the test's own (a cluster it restarts); default: a fresh database
    /// on the run's cluster.</param>
    /// <param name="extra">More switches for `serve` (they win over the harness's).</param>
    public static async Task<ServeHarness> CreateAsync(TimeSpan? apnsLatency = null, string? connectionString = null, params string[] extra)
    {
        var key = new ProviderKeyFile();
        var apns = await MockApnsServer.StartAsync(new MockApnsOptions
        {
            UseTls = false,
            Topic = "im.monal.test",
            ProviderPublicKeyPem = key.PublicKeyPem,
            KeyId = key.KeyId,
            TeamId = key.TeamId,
            Latency = apnsLatency ?? TimeSpan.Zero,
        });
        connectionString ??= await TestDatabase.CreateEmptyDatabaseAsync();
        var dataPath = Directory.CreateTempSubdirectory("monal-serve-").FullName;
        var xmpp = new ComponentServer(Domain, Secret);
        xmpp.Start();
        string[] switches =
        [
            $"--ConnectionStrings:Ledger={connectionString}", $"--Data:Path={dataPath}", "--Http:Urls=http://127.0.0.1:0",
            "--Xmpp:Component:Host=127.0.0.1", $"--Xmpp:Component:Port={xmpp.Port}",
            $"--Xmpp:Component:Domain={Domain}", $"--Xmpp:Component:Secret={Secret}",
            "--PushModules:monalTest:Topic=im.monal.test", $"--PushModules:monalTest:Endpoint={apns.Endpoint}",
            $"--PushModules:monalTest:TeamId={key.TeamId}", $"--PushModules:monalTest:KeyId={key.KeyId}",
            $"--PushModules:monalTest:KeyFile={key.Path}", "--Retention:Scheduler=false", .. extra,
        ];
        return new ServeHarness(key, apns, xmpp, connectionString, dataPath, switches);
    }

    /// <summary>Starts `serve` and accepts its component link.</summary>
    public async Task StartAsync(TimeProvider? clock = null, Action<IServiceCollection>? overrides = null)
    {
        Host = await MonalHost.StartAsync(Switches, HostRole.Serve, CancellationToken.None, services =>
        {
            if (clock is not null)
            {
                services.AddSingleton(clock);
            }

            overrides?.Invoke(services);
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        Link = await _xmpp.AcceptAsync(timeout.Token);
        RepliesRead = Link.ReadRepliesAsync(Record, CancellationToken.None);
    }

    /// <summary>
    /// Restarts the XMPP server under `serve`: <paramref name="lastWords"/> are written (half a stanza, say), the link is
    /// closed and the listener stopped until <paramref name="whileDown"/> completes, then the server listens on the
    /// same port again. Returns how long `serve` took, from then, to be connected and authenticated again.
    /// </summary>
    public async Task<TimeSpan> RestartXmppServerAsync(ReadOnlyMemory<byte> lastWords, Func<Task> whileDown)
    {
        ArgumentNullException.ThrowIfNull(whileDown);
        var port = _xmpp.Port;
        await Link!.WriteAsync(lastWords, CancellationToken.None);
        _xmpp.Dispose();
        await Link.DisposeAsync();
        await whileDown();
        _xmpp.Start(port);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        Link = await _xmpp.AcceptAsync(timeout.Token);
        var elapsed = clock.Elapsed;
        RepliesRead = Link.ReadRepliesAsync(Record, CancellationToken.None);
        return elapsed;
    }

    private void Record(Reply reply)
    {
        ReplyTimes[reply.Id] = System.Diagnostics.Stopwatch.GetTimestamp();
        Replies[reply.Id] = reply;
    }

    public static string NewToken() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    /// <summary>A stateless publish, as Prosody sends it (the summary form carries a body we must never keep).</summary>
    public static byte[] Publish(string id, string token, string from = "example.org") => Encoding.UTF8.GetBytes(
        $"<iq type='set' from='{from}' to='{Domain}' id='{id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>" +
        $"<publish node='{token}'><item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'>" +
        "<field type='hidden' var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>" +
        "<field var='message-count'><value>1</value></field></x></notification></item></publish><publish-options>" +
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
        "<field var='pushModule'><value>monalTest</value></field></x></publish-options></pubsub></iq>");

    public async Task<long> CountAsync(string sql, params object[] args) =>
        Convert.ToInt64(await ScalarAsync(sql, args), CultureInfo.InvariantCulture);

    public async Task<string> ScalarAsync(string sql, params object[] args)
    {
        await using var cmd = Db.CreateCommand(sql);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        return Convert.ToString(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture)!;
    }

    public static async Task WaitAsync(Func<Task<bool>> condition, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"the pipeline did not settle within {seconds} s");
            await Task.Delay(200);
        }
    }

    /// <summary>The whole database as pg_dump writes it.</summary>
    public Task<string> DumpAsync() => PgDump.DumpAsync(ConnectionString);

    public async Task StopServeAsync()
    {
        if (Host is not null)
        {
            await Host.DisposeAsync();
            Host = null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopServeAsync();
        if (Link is not null)
        {
            await Link.DisposeAsync();
        }

        _xmpp.Dispose();
        await Apns.DisposeAsync();
        await Db.DisposeAsync();
        _key.Dispose();
        try
        {
            Directory.Delete(DataPath, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }
}
