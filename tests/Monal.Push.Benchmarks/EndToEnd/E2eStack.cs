using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Monal.Push.Benchmarks.Ledger;
using Monal.Push.Benchmarks.Support;
using Monal.Push.Load.Listening;
using Monal.Push.Load.Publishing;
using Monal.Push.Load.Registering;
using Monal.Push.Load.Running;
using Monal.Push.MockApns;
using Npgsql;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// Everything one end-to-end run needs, started in order and stopped in reverse: a private PostgreSQL (with the raw
/// INSERT ceiling measured on it), the mock APNs (h2c, fresh ES256 key, 1 ms latency, 1 % 410 Unregistered, with its
/// HTTP/2 ceiling), the load generator's XEP-0114 listener, `monal-push serve` as a child process, the registered
/// devices, and the load runner on the component link. <see cref="MeasureAsync"/> runs one phase and reads what serve
/// and the ledger did during it.
/// </summary>
internal sealed class E2eStack : IAsyncDisposable
{
    public const string Domain = "push.localhost";
    private const string Module = "monalProdiOS";
    private const string Topic = "im.monal.bench";
    private const string TeamId = "BENCHTEAM1";
    private const string KeyId = "BENCHKEY01";

    /// <summary>Limits far above what the phases send, so that the benchmark measures the pipeline, not them.</summary>
    internal static readonly string[] BenchLimits =
    [
        "--Limits:PublishesPerSecond=1000000", "--Limits:PublishBurst=1000000",
        "--Limits:NewDevicesPerHour=10000000", "--Limits:NewDeviceBurst=10000000",
        "--Limits:Http:RequestsPerMinute=10000000", "--Limits:Http:RequestBurst=1000000",
        "--Limits:Http:NewDevicesPerHour=10000000", "--Limits:Http:NewDeviceBurst=10000000",
    ];

    private readonly List<IAsyncDisposable> _owned = [];
    private readonly string _work;
    private int _statements;

    private E2eStack(string work) => _work = work;

    public BenchDatabase Db { get; private set; } = null!;

    public string PgVersion { get; private set; } = "";

    public double InsertCeiling { get; private set; }

    public double H2Ceiling { get; private set; }

    public MockApnsServer Apns { get; private set; } = null!;

    public int ApnsBaseline { get; private set; }

    public ServeProcess Serve { get; private set; } = null!;

    public DeviceSet Devices { get; private set; } = null!;

    public Registrar.Result Registration { get; private set; } = null!;

    public LoadRunner Runner { get; private set; } = null!;

    /// <summary>serve's HTTP API (registration, `/metrics`).</summary>
    public Uri ServeHttp { get; private set; } = null!;

    private readonly HttpClient _scraper = new() { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>Starts the whole stack with serve from <paramref name="dll"/>; on failure stops what was started.</summary>
    public static async Task<E2eStack> StartAsync(E2eOptions options, string dll, string logPath, Action<string> step, CancellationToken ct)
    {
        var stack = new E2eStack(Directory.CreateTempSubdirectory("monal-e2e-").FullName);
        try
        {
            await stack.StartPartsAsync(options, dll, logPath, step, ct);
            return stack;
        }
        catch
        {
            await stack.DisposeAsync();
            throw;
        }
    }

    private async Task StartPartsAsync(E2eOptions options, string dll, string logPath, Action<string> step, CancellationToken ct)
    {
        step($"work folder {_work}");
        // serve migrates the schema itself at start, so a build of another commit gets its own migrations.
        _statements = options.Statements;
        Db = await BenchDatabase.StartAsync(migrate: false, statements: _statements > 0);
        _owned.Add(Db);
        PgVersion = await Db.ServerVersionAsync();
        step($"PostgreSQL: {PgVersion}");

        step($"ceiling 1/2: raw multi-row INSERT, {options.CeilingSeconds} s");
        InsertCeiling = await AppendBenchmark.RawInsertCeilingAsync(Db.DataSource, options.CeilingSeconds);
        await using (var drop = Db.DataSource.CreateCommand("drop table if exists bench_raw"))
        {
            await drop.ExecuteNonQueryAsync(ct);
        }

        // Close the ceiling's eight connections now, not when the pool prunes them five minutes later inside a
        // measured phase: PostgreSQL backends exiting together coincided with a one-second stall of the whole machine
        // (docs/benchmarks.md, "Issue 16: the tail").
        Db.DataSource.Clear();

        step($"  {InsertCeiling:N0} events/s");

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var keyFile = Path.Combine(_work, "AuthKey_" + KeyId + ".p8");
        await File.WriteAllTextAsync(keyFile, key.ExportPkcs8PrivateKeyPem(), ct);
        Apns = await MockApnsServer.StartAsync(new MockApnsOptions
        {
            Port = 0,
            UseTls = false,
            Latency = TimeSpan.FromMilliseconds(1),
            UnregisteredShare = 0.01,
            ProviderPublicKeyPem = key.ExportSubjectPublicKeyInfoPem(),
            KeyId = KeyId,
            TeamId = TeamId,
            Topic = Topic,
            RecordRequests = false,
        }, ct);
        _owned.Add(Apns);
        step($"mock APNs (h2c, 1 ms, 1 % 410) on {Apns.Endpoint}");
        step($"ceiling 2/2: HTTP/2, one connection, 100 in flight, {options.CeilingSeconds} s");
        H2Ceiling = await Http2Ceiling.MeasureAsync(Apns.Endpoint, key, KeyId, TeamId, Topic, TimeSpan.FromSeconds(options.CeilingSeconds), ct);
        ApnsBaseline = Apns.RequestCount;
        step($"  {H2Ceiling:N0} requests/s");

        var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var xmpp = new ComponentServer(Domain, secret);
        _owned.Add(new Disposer(xmpp.Dispose));
        xmpp.Start();
        var http = new Uri($"http://127.0.0.1:{FreePort()}/");
        string[] switches =
        [
            "--Data:Path=" + Path.Combine(_work, "data"),
            "--Xmpp:Component:Host=127.0.0.1",
            "--Xmpp:Component:Port=" + xmpp.Port.ToString(CultureInfo.InvariantCulture),
            "--Xmpp:Component:Domain=" + Domain,
            "--Http:Urls=" + http.ToString().TrimEnd('/'),
            $"--PushModules:{Module}:Topic={Topic}",
            $"--PushModules:{Module}:Endpoint={Apns.Endpoint.ToString().TrimEnd('/')}",
            $"--PushModules:{Module}:TeamId={TeamId}",
            $"--PushModules:{Module}:KeyId={KeyId}",
            $"--PushModules:{Module}:KeyFile={keyFile}",
            "--Registration:PushModule=" + Module,
            // One domain publishing 10,000/s to 100,000 new tokens, and one loopback client registering 10,000
            // devices, is what this benchmark measures, and what the abuse limits exist to refuse: lift them
            // (docs/benchmarks.md, "End to end"; docs/operators.md, "Limits").
            .. BenchLimits,
            .. options.ServeSwitches,
        ];
        // Credentials go through the environment (Section__Key), not the command line that `ps` shows.
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__Ledger"] = WithPool(Db.ConnectionString, options.Pool),
            ["Xmpp__Component__Secret"] = secret,
        };
        foreach (var (name, value) in options.ServeEnvironment)
        {
            environment[name] = value;
        }
        Serve = ServeProcess.Start(dll, switches, environment, _work, logPath);
        _owned.Add(Serve);
        step($"serve started (pid {Serve.Id}, log {Serve.LogPath}); waiting for the component link");
        var link = await AcceptLinkAsync(xmpp, ct);
        step("component link up; waiting for HTTP");
        await WaitForHttpAsync(http, Serve, ct);
        ServeHttp = http;
        Devices = new DeviceSet(new LoadMix { Devices = options.Devices, PushModule = Module });
        Registration = await Registrar.RegisterAsync(http, Devices, 16, ct);
        step($"registered {Registration.Registered:N0} of {Devices.RegisteredCount:N0} devices in {Registration.Elapsed.TotalSeconds:N1} s " +
             $"({Registration.PerSecond:N0}/s){(Registration.Failed > 0 ? $", {Registration.Failed} failed: {Registration.FirstError}" : "")}");
        Runner = new LoadRunner(link, Devices, Domain);
        _owned.Add(Runner);
    }

    /// <summary>Runs one phase and reads serve's CPU and memory, the ledger's push events and the mock's duplicates.</summary>
    public async Task<PhaseRow> MeasureAsync(LoadPhase phase, string? tracePath, Action<string> step, CancellationToken ct)
    {
        var perPhaseRss = Serve.ResetPeakRss();
        var cpuBefore = Serve.CpuTime();
        var databaseByProcessBefore = Db.ServerCpuByProcess();
        var databaseCpuBefore = Db.ServerCpu();
        var rigCpuBefore = RigCpu();
        var machineBefore = MachineCpu.Read();
        var duplicatesBefore = Apns.DuplicateDeliveries;
        await using var waits = await WaitSampler.StartAsync(Db.DataSource);
        await using var probe = CommitProbe.Start(Db.DataSource);
        var scrapeBefore = await ServeHistograms.ScrapeAsync(_scraper, ServeHttp, ct);
        var rigGcBefore = PhaseGc.Rig();
        if (_statements > 0)
        {
            await PhaseStatements.ResetAsync(Db.DataSource, ct);
        }

        PhaseResult result;
        await using (tracePath is not null ? CpuTrace.Start(Serve.Id, phase.Duration, tracePath) : null)
        {
            result = await Runner.RunAsync(phase, ct);
        }

        var cpu = Serve.CpuTime() - cpuBefore;
        var databaseCpu = Db.ServerCpu() - databaseCpuBefore;
        var databaseByProcess = DescribeByProcess(databaseByProcessBefore, Db.ServerCpuByProcess(), result.Answered);
        var rigCpu = RigCpu() - rigCpuBefore;
        var machine = MachineCpu.Read() - machineBefore;
        var waitSummary = await waits.StopAsync();
        var wal = await waits.WalSinceStartAsync();
        var probed = await probe.StopAsync();
        var scrapeAfter = await ServeHistograms.ScrapeAsync(_scraper, ServeHttp, ct);
        var commits = scrapeBefore is null || scrapeAfter is null
            ? "" : ServeHistograms.Parse(scrapeAfter).Since(ServeHistograms.Parse(scrapeBefore));
        var memory = scrapeAfter is null ? "" : ServeMemory.Describe(scrapeAfter, Serve.Rss(), Serve.RssParts());
        var statements = _statements > 0 ? await PhaseStatements.DescribeAsync(Db.DataSource, _statements, result.Answered, ct) : "";
        var collections = PhaseGc.Describe(scrapeBefore, scrapeAfter, rigGcBefore, result.EndedAt - result.StartedAt, result.Answered);
        var (requested, delivered, failed) = await PushEventsAsync(Db.DataSource, result.StartedAt, result.EndedAt, ct);
        var row = new PhaseRow(result, cpu, Serve.PeakRss(), perPhaseRss, requested, delivered, failed)
        {
            DuplicateDeliveries = Apns.DuplicateDeliveries - duplicatesBefore,
            DatabaseWaits = waitSummary,
            DatabaseCpu = databaseCpu,
            RigCpu = rigCpu,
            MachineBusy = machine.BusyShare,
        };
        step(PhaseReport.Describe(result).TrimEnd() +
             $"\n  ledger: push_requested {requested:N0}, push_delivered {delivered:N0}, push_failed {failed:N0}; serve CPU {cpu.TotalSeconds:N1} s; database CPU {databaseCpu.TotalSeconds:N1} s; " +
             $"benchmark process CPU {rigCpu.TotalSeconds:N1} s; machine busy {machine.BusyShare:P0}; " +
             $"duplicate deliveries {row.DuplicateDeliveries}\n  database backends (average over 100 ms samples): {waitSummary}" +
             (wal.Length > 0 ? $"\n  database: {wal}" : "") +
             (databaseByProcess.Length > 0 ? $"\n  database CPU by process, µs a publish: {databaseByProcess}" : "") +
             (probed.Length > 0 ? $"\n  probe every 10 ms: {probed}" : "") +
             (commits.Length > 0 ? $"\n  serve's histograms: {commits}" : "") +
             (memory.Length > 0 ? $"\n  serve memory at the phase's end: {memory}" : "") +
             $"\n  garbage collections: {collections}" +
             (statements.Length > 0 ? $"\n  database statements (pg_stat_statements): {statements}" : ""));
        if (Runner.Reading.IsCompleted || Serve.HasExited)
        {
            throw new BenchmarkFailedException($"the component link closed during {phase.Name}:\n{await Serve.TailAsync(30)}");
        }

        return row;
    }

    // "client backends 520, walwriter 41, ended 38 (autovacuum workers, closed connections), …": where the database's
    // CPU went beyond its statements (pg_stat_statements sees only the client backends' share).
    private static string DescribeByProcess(IReadOnlyDictionary<string, TimeSpan> before, IReadOnlyDictionary<string, TimeSpan> after, long publishes) =>
        string.Join(", ", after
            .Select(a => (Kind: a.Key, Micros: (a.Value - before.GetValueOrDefault(a.Key)).TotalMicroseconds / Math.Max(1, publishes)))
            .Where(k => k.Micros >= 1)
            .OrderByDescending(k => k.Micros)
            .Select(k => string.Create(CultureInfo.InvariantCulture, $"{k.Kind} {k.Micros:N0}") + (k.Kind == "ended" ? " (autovacuum workers, closed connections)" : "")));

    private static TimeSpan RigCpu()
    {
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return self.TotalProcessorTime;
    }

    private async Task<ComponentLink> AcceptLinkAsync(ComponentServer xmpp, CancellationToken ct)
    {
        using var linkWait = CancellationTokenSource.CreateLinkedTokenSource(ct);
        linkWait.CancelAfter(TimeSpan.FromSeconds(90));
        var accept = xmpp.AcceptAsync(linkWait.Token);
        var first = await Task.WhenAny(accept, Serve.Exited);
        if (first != accept)
        {
            await linkWait.CancelAsync();
            throw new BenchmarkFailedException($"serve exited before connecting:\n{await Serve.TailAsync(30)}");
        }

        try
        {
            return await accept;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new BenchmarkFailedException($"serve did not connect its component within 90 s:\n{await Serve.TailAsync(30)}");
        }
    }

    private static string WithPool(string connectionString, int pool)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        builder.Remove("Maximum Pool Size");
        if (pool > 0)
        {
            builder.MaxPoolSize = pool;
        }

        return builder.ConnectionString;
    }

    private static async Task<(long Requested, long Delivered, long Failed)> PushEventsAsync(
        NpgsqlDataSource dataSource, DateTimeOffset from, DateTimeOffset to, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            select count(*) filter (where type = 'push_requested.v1'),
                   count(*) filter (where type = 'push_delivered.v1'),
                   count(*) filter (where type = 'push_failed.v1')
            from push_events where "timestamp" >= $1 and "timestamp" < $2
            """);
        cmd.Parameters.Add(new() { Value = from.UtcDateTime });
        cmd.Parameters.Add(new() { Value = to.UtcDateTime });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
    }

    private static async Task WaitForHttpAsync(Uri http, ServeProcess serve, CancellationToken ct)
    {
        using var client = new HttpClient { BaseAddress = http, Timeout = TimeSpan.FromSeconds(5) };
        var until = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < until)
        {
            if (serve.HasExited)
            {
                throw new BenchmarkFailedException($"serve exited:\n{await serve.TailAsync(30)}");
            }

            try
            {
                using var response = await client.GetAsync("health", ct);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(200, ct);
        }

        throw new BenchmarkFailedException($"serve's HTTP API did not answer /health within 60 s:\n{await serve.TailAsync(30)}");
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }

        _owned.Clear();
        _scraper.Dispose();
        try
        {
            Directory.Delete(_work, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }

    private sealed class Disposer(Action dispose) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            dispose();
            return ValueTask.CompletedTask;
        }
    }
}
