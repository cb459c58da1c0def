using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
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
/// Issue 8's one-command benchmark (`./bench [--quick]`): a private PostgreSQL, the mock APNs (h2c, fresh ES256 key,
/// 1 ms latency, 1 % 410 Unregistered), the load generator's XEP-0114 listener, and `monal-push serve` as a child
/// process pointed at all of them. It registers the registered devices over HTTP, then runs an unreported warm-up and
/// the phases (open loop 1,000/s and 5,000/s, closed loop at maximum), and prints one table with the two ceilings measured
/// on the same machine in the same run (raw multi-row INSERT on the same cluster, HTTP/2 to the same mock).
/// Everything runs on loopback and stops by itself; Ctrl-C, SIGTERM and any failure stop the children.
/// </summary>
internal static class EndToEndBenchmark
{
    private const string Domain = "push.localhost";
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

    public static async Task<int> RunAsync(string[] args)
    {
        var quick = args.Contains("--quick");
        var devicesCount = AppendBenchmark.Option(args, "--devices", quick ? 10_000 : 100_000);
        var outstanding = AppendBenchmark.Option(args, "--outstanding", 512);
        // Issue 19: serve's Maximum Pool Size; 0 leaves it out of the connection string, so serve's default budget applies.
        var pool = AppendBenchmark.Option(args, "--pool", 100);
        var traceIndex = Array.IndexOf(args, "--trace");
        var tracePath = traceIndex >= 0 && traceIndex + 1 < args.Length ? Path.GetFullPath(args[traceIndex + 1]) : null;
        var phaseSeconds = quick ? (Open: 3, Closed: 5, Warm: 2, Ceiling: 2) : (Open: 20, Closed: 30, Warm: 5, Ceiling: 5);
        var command = "./bench" + (args.Length > 0 ? " " + string.Join(' ', args) : "");

        // Hard cap on the whole run, whatever hangs.
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(quick ? 6 : 20));
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, Cancel);
        void Cancel(PosixSignalContext context)
        {
            context.Cancel = true;
            Console.Error.WriteLine("stopping: cleaning up the children");
            stop.Cancel();
        }

        var ct = stop.Token;
        var root = RepositoryRoot();
        var dll = Path.Combine(root, "src", "Cli", "bin", "Release", "net10.0", "monal-push.dll");
        if (!File.Exists(dll))
        {
            Console.Error.WriteLine($"{dll} is missing: build it first (./bench does: dotnet build -c Release tests/Monal.Push.Benchmarks).");
            return 2;
        }

        var work = Directory.CreateTempSubdirectory("monal-e2e-").FullName;
        var loadBefore = LoadAverage();
        Step($"work folder {work}; load average {loadBefore}");
        try
        {
            await using var db = await BenchDatabase.StartAsync();
            var pgVersion = await db.ServerVersionAsync();
            Step($"PostgreSQL: {pgVersion}");

            Step($"ceiling 1/2: raw multi-row INSERT, {phaseSeconds.Ceiling} s");
            var insertCeiling = await AppendBenchmark.RawInsertCeilingAsync(db.DataSource, phaseSeconds.Ceiling);
            await using (var drop = db.DataSource.CreateCommand("drop table if exists bench_raw"))
            {
                await drop.ExecuteNonQueryAsync(ct);
            }

            Step($"  {insertCeiling:N0} events/s");

            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var keyFile = Path.Combine(work, "AuthKey_" + KeyId + ".p8");
            await File.WriteAllTextAsync(keyFile, key.ExportPkcs8PrivateKeyPem(), ct);
            await using var apns = await MockApnsServer.StartAsync(new MockApnsOptions
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
            Step($"mock APNs (h2c, 1 ms, 1 % 410) on {apns.Endpoint}");
            Step($"ceiling 2/2: HTTP/2, one connection, 100 in flight, {phaseSeconds.Ceiling} s");
            var h2Ceiling = await Http2Ceiling.MeasureAsync(apns.Endpoint, key, KeyId, TeamId, Topic, TimeSpan.FromSeconds(phaseSeconds.Ceiling), ct);
            var apnsBaseline = apns.RequestCount;
            Step($"  {h2Ceiling:N0} requests/s");

            var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
            using var xmpp = new ComponentServer(Domain, secret);
            xmpp.Start();
            var httpPort = FreePort();
            var http = new Uri($"http://127.0.0.1:{httpPort}/");
            string[] switches =
            [
                "--Data:Path=" + Path.Combine(work, "data"),
                "--Xmpp:Component:Host=127.0.0.1",
                "--Xmpp:Component:Port=" + xmpp.Port.ToString(CultureInfo.InvariantCulture),
                "--Xmpp:Component:Domain=" + Domain,
                "--Http:Urls=" + http.ToString().TrimEnd('/'),
                $"--PushModules:{Module}:Topic={Topic}",
                $"--PushModules:{Module}:Endpoint={apns.Endpoint.ToString().TrimEnd('/')}",
                $"--PushModules:{Module}:TeamId={TeamId}",
                $"--PushModules:{Module}:KeyId={KeyId}",
                $"--PushModules:{Module}:KeyFile={keyFile}",
                "--Registration:PushModule=" + Module,
                // One domain publishing 10,000/s to 100,000 new tokens, and one loopback client registering 10,000
                // devices, is what this benchmark measures, and what the abuse limits exist to refuse: lift them
                // (docs/benchmarks.md, "End to end"; docs/operators.md, "Limits").
                .. BenchLimits,
            ];
            // Credentials go through the environment (Section__Key), not the command line that `ps` shows.
            var environment = new Dictionary<string, string>
            {
                ["ConnectionStrings__Ledger"] = WithPool(db.ConnectionString, pool),
                ["Xmpp__Component__Secret"] = secret,
            };
            // The log outlives the work folder, so a slow or failed run can be read afterwards.
            var logPath = Path.Combine(Path.GetTempPath(), "monal-e2e-serve.log");
            await using var serve = ServeProcess.Start(dll, switches, environment, work, logPath);
            Step($"serve started (pid {serve.Id}, log {serve.LogPath}); waiting for the component link");
            ComponentLink link;
            using (var linkWait = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                linkWait.CancelAfter(TimeSpan.FromSeconds(90));
                var accept = xmpp.AcceptAsync(linkWait.Token);
                var first = await Task.WhenAny(accept, serve.Exited);
                if (first != accept)
                {
                    await linkWait.CancelAsync();
                    throw new BenchmarkFailedException($"serve exited before connecting:\n{await serve.TailAsync(30)}");
                }

                try
                {
                    link = await accept;
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw new BenchmarkFailedException($"serve did not connect its component within 90 s:\n{await serve.TailAsync(30)}");
                }
            }

            Step("component link up; waiting for HTTP");
            await WaitForHttpAsync(http, serve, ct);
            var devices = new DeviceSet(new LoadMix { Devices = devicesCount, PushModule = Module });
            var registration = await Registrar.RegisterAsync(http, devices, 16, ct);
            Step($"registered {registration.Registered:N0} of {devices.RegisteredCount:N0} devices in {registration.Elapsed.TotalSeconds:N1} s " +
                 $"({registration.PerSecond:N0}/s){(registration.Failed > 0 ? $", {registration.Failed} failed: {registration.FirstError}" : "")}");

            await using var runner = new LoadRunner(link, devices, Domain);
            var warm = await runner.RunAsync(LoadPhase.Open("warm-up", 500, TimeSpan.FromSeconds(phaseSeconds.Warm)), ct);
            Step("warm-up: " + PhaseReport.Describe(warm).TrimEnd());
            LoadPhase[] phases =
            [
                LoadPhase.Open("open 1k", 1_000, TimeSpan.FromSeconds(phaseSeconds.Open)),
                LoadPhase.Open("open 5k", 5_000, TimeSpan.FromSeconds(phaseSeconds.Open)),
                LoadPhase.Closed("closed max", outstanding, TimeSpan.FromSeconds(phaseSeconds.Closed)),
            ];
            var rows = new List<PhaseRow>();
            foreach (var phase in phases)
            {
                var perPhaseRss = serve.ResetPeakRss();
                var cpuBefore = serve.CpuTime();
                await using var trace = tracePath is not null && !phase.IsOpenLoop
                    ? CpuTrace.Start(serve.Id, phase.Duration, tracePath)
                    : null;
                var result = await runner.RunAsync(phase, ct);
                var cpu = serve.CpuTime() - cpuBefore;
                var (requested, delivered, failed) = await PushEventsAsync(db.DataSource, result.StartedAt, result.EndedAt, ct);
                var row = new PhaseRow(result, cpu, serve.PeakRss(), perPhaseRss, requested, delivered, failed);
                rows.Add(row);
                Step(PhaseReport.Describe(result).TrimEnd() +
                     $"\n  ledger: push_requested {requested:N0}, push_delivered {delivered:N0}, push_failed {failed:N0}; serve CPU {cpu.TotalSeconds:N1} s");
                if (runner.Reading.IsCompleted || serve.HasExited)
                {
                    throw new BenchmarkFailedException($"the component link closed during {phase.Name}:\n{await serve.TailAsync(30)}");
                }
            }

            var loadAfter = LoadAverage();
            var logBytes = new FileInfo(serve.LogPath).Length;
            Console.WriteLine();
            Console.WriteLine(Table(rows, insertCeiling, h2Ceiling, outstanding));
            Console.WriteLine();
            Console.WriteLine($"command: {command}");
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {MemoryGiB():N1} GiB, {RuntimeInformation.OSDescription}, .NET {Environment.Version}; {pgVersion}");
            Console.WriteLine($"devices: {devicesCount:N0} ({registration.Registered:N0} registered over HTTP at {registration.PerSecond:N0}/s); " +
                              $"mock APNs served {apns.RequestCount - apnsBaseline:N0} pushes; serve log {logBytes / 1024.0:N0} KiB; " +
                              $"late replies {runner.LateReplies:N0}, stray replies {runner.StrayReplies:N0}");
            Console.WriteLine($"load average (1, 5, 15 min) before: {loadBefore}; after: {loadAfter}");
            return rows.Any(r => r.Result.Answered == 0) ? 1 : 0;
        }
        catch (BenchmarkFailedException e)
        {
            Console.Error.WriteLine("benchmark failed: " + e.Message);
            return 1;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            Console.Error.WriteLine("stopped (Ctrl-C, SIGTERM or the run's time cap); children cleaned up");
            return 130;
        }
        finally
        {
            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
        }
    }

    private static string WithPool(string connectionString, int pool)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        builder.Remove("Maximum Pool Size");
        if (pool > 0)
        {
            builder.MaxPoolSize = pool;
        }

        return builder.ConnectionString;
    }

    private static string Table(List<PhaseRow> rows, double insertCeiling, double h2Ceiling, int outstanding)
    {
        var text = new StringBuilder();
        text.AppendLine("| phase | offered/s | publishes/s | result | p50 ms | p99 ms | p99.9 ms | max ms | pushes delivered/s | serve CPU (cores) | CPU µs/publish | serve peak RSS MiB |");
        text.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var row in rows)
        {
            var r = row.Result;
            var h = r.Latency;
            var offered = r.Phase.IsOpenLoop ? r.OfferedPerSecond.ToString("N0", CultureInfo.InvariantCulture) : $"({outstanding} outstanding)";
            var resultShare = r.Answered > 0 ? (double)r.Count("result") / r.Answered : 0;
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Phase.Name} | {offered} | {r.RepliesPerSecond:N0} | {resultShare:P1} | {PhaseReport.Ms(h.ValueAtPercentile(50))} | " +
                $"{PhaseReport.Ms(h.ValueAtPercentile(99))} | {PhaseReport.Ms(h.ValueAtPercentile(99.9))} | {PhaseReport.Ms(h.Max)} | " +
                $"{row.DeliveredPerSecond:N0} | {row.CpuCores:N2} | {row.CpuMicrosPerPublish:N0} | {row.PeakRssBytes / 1048576.0:N0}{(row.PeakRssIsPerPhase ? "" : " (since start)")} |");
        }

        text.AppendLine(CultureInfo.InvariantCulture,
            $"| ceiling: raw multi-row INSERT (8 connections × 100 rows), events/s | – | {insertCeiling:N0} | | | | | | | | | |");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| ceiling: HTTP/2 to the mock (1 connection, 100 in flight), requests/s | – | {h2Ceiling:N0} | | | | | | | | | |");
        var best = rows.Count > 0 ? rows.Max(r => r.Result.RepliesPerSecond) : 0;
        var bestDelivered = rows.Count > 0 ? rows.Max(r => r.DeliveredPerSecond) : 0;
        var lower = Math.Min(insertCeiling, h2Ceiling);
        text.AppendLine();
        text.Append(CultureInfo.InvariantCulture,
            $"ratio: best publishes/s {best:N0} = {best / lower:P0} of the lower ceiling ({lower:N0}/s, {(insertCeiling <= h2Ceiling ? "PostgreSQL" : "HTTP/2")}); ");
        text.Append(CultureInfo.InvariantCulture,
            $"best pushes delivered/s {bestDelivered:N0} = {bestDelivered / lower:P0} (a delivered push costs 2 ledger events and 1 HTTP/2 request)");
        return text.ToString();
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

    private static string LoadAverage()
    {
        try
        {
            return string.Join(", ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static double MemoryGiB()
    {
        var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1048576.0;
    }

    private static string RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Monal.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        throw new BenchmarkFailedException("Run from a checkout: Monal.sln not found above the working directory.");
    }

    private static void Step(string message) =>
        Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");
}

/// <summary>The run cannot go on (serve failed to start, the link closed); the message says why.</summary>
internal sealed class BenchmarkFailedException(string message) : Exception(message);
