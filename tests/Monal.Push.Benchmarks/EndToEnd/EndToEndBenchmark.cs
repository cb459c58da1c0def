using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Monal.Push.Load.Running;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// Issue 8's one-command benchmark (`./bench [--quick]`): one <see cref="E2eStack"/> (private PostgreSQL, mock APNs,
/// the load generator's XEP-0114 listener, `monal-push serve` as a child process), an unreported warm-up, then the
/// phases of the chosen mix (open loop 1,000/s and 5,000/s, closed loop at maximum; first publishes, then steady
/// state), and one table with the two ceilings measured on the same machine in the same run. `--ab` alternates two
/// builds or settings (<see cref="AbBenchmark"/>); `--soak` holds one rate for minutes (<see cref="SoakBenchmark"/>).
/// Everything runs on loopback and stops by itself; Ctrl-C, SIGTERM and any failure stop the children.
/// </summary>
internal static class EndToEndBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Contains("--ab"))
        {
            return await AbBenchmark.RunAsync(args);
        }

        if (args.Contains("--soak"))
        {
            return await SoakBenchmark.RunAsync(args);
        }

        var options = E2eOptions.Parse(args);
        var command = "./bench" + (args.Length > 0 ? " " + string.Join(' ', args) : "");
        return await BenchSession.RunAsync(TimeSpan.FromMinutes(options.Quick ? 8 : 30), async ct =>
        {
            var dll = BenchSession.ServeDll(BenchSession.RepositoryRoot());
            var loadBefore = BenchSession.LoadAverage();
            BenchSession.Step($"load average {loadBefore}");
            var run = await RunOnceAsync(options, dll, BenchSession.Step, ct, settle: true);
            Console.WriteLine();
            Console.WriteLine(Table(run, options.Outstanding));
            Console.WriteLine();
            if (run.Settled is { } settled)
            {
                Console.WriteLine(settled.Describe());
            }

            Console.WriteLine($"command: {command}");
            Console.WriteLine(BenchSession.Machine(run.PgVersion));
            Console.WriteLine($"devices: {options.Devices:N0} ({run.Registered:N0} registered over HTTP at {run.RegisteredPerSecond:N0}/s); " +
                              $"mock APNs served {run.ApnsServed:N0} pushes, {run.Duplicates:N0} of them a second time; serve log {run.LogBytes / 1024.0:N0} KiB; " +
                              $"late replies {run.LateReplies:N0}, stray replies {run.StrayReplies:N0}");
            Console.WriteLine($"load average (1, 5, 15 min) before: {loadBefore}; after: {BenchSession.LoadAverage()}");
            return run.Rows.Any(r => r.Result.Answered == 0) || run.Settled is { Complete: false } ? 1 : 0;
        });
    }

    /// <summary>What one run measured, for the table and for <see cref="AbBenchmark"/>.</summary>
    internal sealed record Run(
        IReadOnlyList<PhaseRow> Rows, double InsertCeiling, double H2Ceiling, string PgVersion, int Registered, double RegisteredPerSecond,
        long ApnsServed, long Duplicates, long LogBytes, long LateReplies, long StrayReplies)
    {
        /// <summary>Every acknowledged push after the last phase, once the delivery queue drained; null in A/B runs.</summary>
        public Settlement? Settled { get; init; }
    }

    /// <summary>
    /// The whole run's pushes once the queue drained after the last phase: a publish is answered `result` only after
    /// its `PushRequested` is durable, so every request in the ledger is an acknowledged push, and each must end
    /// delivered or failed (the mock's 410s), however far delivery fell behind the publishes during the phases.
    /// </summary>
    internal sealed record Settlement(
        long Requested, long Delivered, long Refused, long WithoutOutcome, long TwoOutcomes, long Queued, TimeSpan DrainTime)
    {
        public bool Complete => Queued == 0 && WithoutOutcome == 0 && TwoOutcomes == 0;

        public string Describe() => string.Create(CultureInfo.InvariantCulture,
            $"every acknowledged push: {Requested:N0} requested; {Delivered:N0} delivered, {Refused:N0} refused for good (the mock's 410s), " +
            $"{WithoutOutcome:N0} without a final outcome, {TwoOutcomes:N0} with two; the delivery queue drained {DrainTime.TotalSeconds:N1} s " +
            $"after the last phase ({Queued:N0} left)");
    }

    /// <summary>Starts a stack with serve from <paramref name="dll"/>, runs the warm-up and the phases, stops the stack.</summary>
    internal static async Task<Run> RunOnceAsync(E2eOptions options, string dll, Action<string> step, CancellationToken ct, bool settle = false)
    {
        // The log outlives the work folder, so a slow or failed run can be read afterwards.
        var logPath = Path.Combine(Path.GetTempPath(), "monal-e2e-serve.log");
        await using var stack = await E2eStack.StartAsync(options, dll, logPath, step, ct);
        var warm = await stack.Runner.RunAsync(LoadPhase.Open("warm-up", 500, TimeSpan.FromSeconds(options.WarmSeconds)), ct);
        step("warm-up: " + PhaseReport.Describe(warm).TrimEnd());
        var rows = new List<PhaseRow>();
        if (options.Mix is BenchMix.First or BenchMix.Both)
        {
            foreach (var phase in Phases(options, "first"))
            {
                rows.Add(await stack.MeasureAsync(phase, TraceFor(options, phase), step, ct));
            }
        }

        if (options.Mix is BenchMix.Steady or BenchMix.Both)
        {
            await PrimeAsync(stack, options.Outstanding, step, ct);
            foreach (var phase in Phases(options, "steady"))
            {
                rows.Add(await stack.MeasureAsync(phase, TraceFor(options, phase), step, ct));
            }
        }

        Settlement? settled = null;
        if (settle)
        {
            var (queued, drainTime) = await DrainQueueAsync(stack, ct);
            settled = await SettleAsync(stack, queued, drainTime, ct);
            step(settled.Describe());
        }

        return new Run(rows, stack.InsertCeiling, stack.H2Ceiling, stack.PgVersion, stack.Registration.Registered,
            stack.Registration.PerSecond, stack.Apns.RequestCount - stack.ApnsBaseline, stack.Apns.DuplicateDeliveries,
            new FileInfo(stack.Serve.LogPath).Length, stack.Runner.LateReplies, stack.Runner.StrayReplies)
        {
            Settled = settled,
        };
    }

    /// <summary>Every push of the run by push id: requested, and which final outcome (if any) its stream recorded.</summary>
    private static async Task<Settlement> SettleAsync(E2eStack stack, long queued, TimeSpan drainTime, CancellationToken ct)
    {
        // A final outcome: delivered, failed for good (a transient failure is retried), or the token declared dead
        // (410, in the events table) or wrong for its topic.
        await using var cmd = stack.Db.DataSource.CreateCommand("""
            with requested as (select (data->>'push_id')::uuid as push_id from push_events where type = 'push_requested.v1'),
            final as (
                select (data->>'push_id')::uuid as push_id, type from push_events
                where type = 'push_delivered.v1' or (type = 'push_failed.v1' and not (data->>'transient')::boolean)
                union all
                select (data->>'push_id')::uuid, type from events where type in ('token_invalidated.v1', 'token_rejected.v1'))
            select (select count(*) from requested),
                   (select count(*) from final where type = 'push_delivered.v1'),
                   (select count(*) from final where type <> 'push_delivered.v1'),
                   (select count(*) from requested r where not exists (select 1 from final f where f.push_id = r.push_id)),
                   (select count(*) from (select push_id from final group by push_id having count(*) > 1) twice)
            """);
        cmd.CommandTimeout = 300;
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return new Settlement(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), queued, drainTime);
    }

    /// <summary>Waits (up to 5 minutes) until the delivery queue is empty; returns what is left and how long it took.</summary>
    private static async Task<(long Left, TimeSpan Elapsed)> DrainQueueAsync(E2eStack stack, CancellationToken ct)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        await using var queued = stack.Db.DataSource.CreateCommand("select count(*) from push_queue");
        long left;
        while ((left = (long)(await queued.ExecuteScalarAsync(ct))!) > 0 && started.Elapsed < TimeSpan.FromMinutes(5))
        {
            await Task.Delay(500, ct);
        }

        return (left, started.Elapsed);
    }

    /// <summary>Publishes once to every stateless device (closed loop), so that the phases after it find them all.</summary>
    internal static async Task PrimeAsync(E2eStack stack, int outstanding, Action<string> step, CancellationToken ct)
    {
        var count = stack.Devices.StatelessCount;
        step($"priming: one publish to each of the {count:N0} stateless devices");
        var prime = LoadPhase.Closed("priming", outstanding, TimeSpan.FromMinutes(20)) with
        {
            MaxRequests = count,
            EachStatelessDeviceOnce = true,
        };
        var result = await stack.Runner.RunAsync(prime, ct);
        step("priming: " + PhaseReport.Describe(result).TrimEnd());

        // The priming's pushes are delivered before the steady phases start: they must not compete with them.
        var (left, elapsed) = await DrainQueueAsync(stack, ct);
        step($"priming: delivery backlog drained in {elapsed.TotalSeconds:N1} s ({left:N0} left)");
    }

    private static LoadPhase[] Phases(E2eOptions options, string mix) =>
    [
        LoadPhase.Open($"{mix}: open 1k", 1_000, TimeSpan.FromSeconds(options.OpenSeconds)),
        LoadPhase.Open($"{mix}: open 5k", 5_000, TimeSpan.FromSeconds(options.OpenSeconds)),
        LoadPhase.Closed($"{mix}: closed max", options.Outstanding, TimeSpan.FromSeconds(options.ClosedSeconds)),
    ];

    private static string? TraceFor(E2eOptions options, LoadPhase phase) =>
        options.TracePath is { } path && !phase.IsOpenLoop ? (phase.Name.StartsWith("first", StringComparison.Ordinal) ? path : path + ".steady") : null;

    private static string Table(Run run, int outstanding)
    {
        var text = new StringBuilder();
        text.AppendLine("| phase | offered/s | publishes/s | result | unanswered | p50 ms | p99 ms | p99.9 ms | max ms | pushes delivered/s | duplicate deliveries | serve CPU (cores) | CPU µs/publish | database CPU µs/publish | benchmark process CPU µs/publish | machine busy | serve peak RSS MiB |");
        text.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var row in run.Rows)
        {
            var r = row.Result;
            var h = r.Latency;
            var offered = r.Phase.IsOpenLoop ? r.OfferedPerSecond.ToString("N0", CultureInfo.InvariantCulture) : $"({outstanding} outstanding)";
            var resultShare = r.Answered > 0 ? (double)r.Count("result") / r.Answered : 0;
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Phase.Name} | {offered} | {r.RepliesPerSecond:N0} | {resultShare:P1} | {r.Unanswered:N0} | {PhaseReport.Ms(h.ValueAtPercentile(50))} | " +
                $"{PhaseReport.Ms(h.ValueAtPercentile(99))} | {PhaseReport.Ms(h.ValueAtPercentile(99.9))} | {PhaseReport.Ms(h.Max)} | " +
                $"{row.DeliveredPerSecond:N0} | {row.DuplicateDeliveries:N0} | {row.CpuCores:N2} | {row.CpuMicrosPerPublish:N0} | {row.DatabaseCpuMicrosPerPublish:N0} | {row.RigCpuMicrosPerPublish:N0} | {row.MachineBusy:P0} | {row.PeakRssBytes / 1048576.0:N0}{(row.PeakRssIsPerPhase ? "" : " (since start)")} |");
        }

        text.AppendLine(CultureInfo.InvariantCulture,
            $"| ceiling: raw multi-row INSERT (8 connections × 100 rows), events/s | – | {run.InsertCeiling:N0} | | | | | | | | | | | | | | |");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| ceiling: HTTP/2 to the mock (1 connection, 100 in flight), requests/s | – | {run.H2Ceiling:N0} | | | | | | | | | | | | | | |");
        var best = run.Rows.Count > 0 ? run.Rows.Max(r => r.Result.RepliesPerSecond) : 0;
        var bestDelivered = run.Rows.Count > 0 ? run.Rows.Max(r => r.DeliveredPerSecond) : 0;
        var lower = Math.Min(run.InsertCeiling, run.H2Ceiling);
        text.AppendLine();
        text.Append(CultureInfo.InvariantCulture,
            $"ratio: best publishes/s {best:N0} = {best / lower:P0} of the lower ceiling ({lower:N0}/s, {(run.InsertCeiling <= run.H2Ceiling ? "PostgreSQL" : "HTTP/2")}); ");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"best pushes delivered/s {bestDelivered:N0} = {bestDelivered / lower:P0} (a delivered push costs 2 ledger events and 1 HTTP/2 request)");
        text.AppendLine();
        text.Append("database backends per phase (average number in each state over 100 ms samples of pg_stat_activity):");
        foreach (var row in run.Rows)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n- {row.Result.Phase.Name}: {row.DatabaseWaits}");
        }

        return text.ToString();
    }
}

/// <summary>What every mode of `./bench` shares: signals and a hard time cap, the repository, the machine line.</summary>
internal static class BenchSession
{
    /// <summary>Runs <paramref name="body"/> with Ctrl-C, SIGTERM, SIGHUP and <paramref name="cap"/> cancelling it.</summary>
    public static async Task<int> RunAsync(TimeSpan cap, Func<CancellationToken, Task<int>> body)
    {
        using var stop = new CancellationTokenSource(cap);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, Cancel);
        void Cancel(PosixSignalContext context)
        {
            context.Cancel = true;
            Console.Error.WriteLine("stopping: cleaning up the children");
            stop.Cancel();
        }

        try
        {
            return await body(stop.Token);
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
    }

    public static string ServeDll(string root)
    {
        var dll = Path.Combine(root, "src", "Cli", "bin", "Release", "net10.0", "monal-push.dll");
        return File.Exists(dll)
            ? dll
            : throw new BenchmarkFailedException($"{dll} is missing: build it first (./bench does: dotnet build -c Release tests/Monal.Push.Benchmarks).");
    }

    public static string RepositoryRoot()
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

    public static string Machine(string pgVersion) =>
        $"machine: {Environment.ProcessorCount} cores, {MemoryGiB():N1} GiB, {RuntimeInformation.OSDescription}, .NET {Environment.Version}; {pgVersion}";

    public static string LoadAverage()
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

    public static void Step(string message) =>
        Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");

    private static double MemoryGiB()
    {
        var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1048576.0;
    }
}

/// <summary>The run cannot go on (serve failed to start, the link closed); the message says why.</summary>
internal sealed class BenchmarkFailedException(string message) : Exception(message);
