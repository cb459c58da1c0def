using System.Globalization;
using System.Text;
using Monal.Push.Load.Running;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// `./bench --soak [--minutes 30] [--rate 1000]`: one stack held at one open-loop rate for a long time with the
/// benchmark's mix on devices that exist (every stateless device is created first), one measured window a minute.
/// Each window's row has the rate, latency percentiles, unanswered publishes and duplicate deliveries, and serve's
/// resident memory, open handles, threads, CPU and the database's client connections at its end: a leak shows as a
/// trend, which the summary compares between the first and the last windows.
/// </summary>
internal static class SoakBenchmark
{
    private sealed record Window(int Minute, PhaseRow Row, long Rss, int Handles, int Threads, long DbConnections);

    public static async Task<int> RunAsync(string[] args)
    {
        var minutes = Ledger.AppendBenchmark.Option(args, "--minutes", 30);
        var rate = E2eOptions.Number(args, "--rate", 1_000);
        var options = E2eOptions.Parse(args) with { Mix = BenchMix.Steady };
        var command = "./bench " + string.Join(' ', args);
        return await BenchSession.RunAsync(TimeSpan.FromMinutes(minutes + 15), async ct =>
        {
            var dll = BenchSession.ServeDll(BenchSession.RepositoryRoot());
            var loadBefore = BenchSession.LoadAverage();
            var logPath = Path.Combine(Path.GetTempPath(), "monal-soak-serve.log");
            await using var stack = await E2eStack.StartAsync(options, dll, logPath, BenchSession.Step, ct);
            await EndToEndBenchmark.PrimeAsync(stack, options.Outstanding, BenchSession.Step, ct);
            var windows = new List<Window>();
            for (var minute = 1; minute <= minutes; minute++)
            {
                var phase = LoadPhase.Open($"minute {minute}", rate, TimeSpan.FromMinutes(1)) with { Drain = TimeSpan.FromSeconds(10) };
                var row = await stack.MeasureAsync(phase, null, _ => { }, ct);
                var window = new Window(minute, row, stack.Serve.Rss(), stack.Serve.OpenHandles(), stack.Serve.Threads(),
                    await ConnectionsAsync(stack, ct));
                windows.Add(window);
                BenchSession.Step(Row(window));
            }

            Console.WriteLine();
            Console.WriteLine(Table(windows));
            Console.WriteLine(Summary(windows));
            Console.WriteLine();
            Console.WriteLine($"command: {command}");
            Console.WriteLine(BenchSession.Machine(stack.PgVersion));
            Console.WriteLine($"devices: {options.Devices:N0}; serve log {new FileInfo(stack.Serve.LogPath).Length / 1024.0:N0} KiB ({stack.Serve.LogPath}); " +
                              $"late replies {stack.Runner.LateReplies:N0}, stray replies {stack.Runner.StrayReplies:N0}");
            Console.WriteLine($"load average (1, 5, 15 min) before: {loadBefore}; after: {BenchSession.LoadAverage()}");
            return windows.Sum(w => w.Row.Result.Unanswered + w.Row.DuplicateDeliveries) == 0 ? 0 : 1;
        });
    }

    private static async Task<long> ConnectionsAsync(E2eStack stack, CancellationToken ct)
    {
        await using var cmd = stack.Db.DataSource.CreateCommand(
            "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()");
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private static string Row(Window w)
    {
        var r = w.Row.Result;
        return string.Create(CultureInfo.InvariantCulture,
            $"| {w.Minute} | {r.RepliesPerSecond:N0} | {PhaseReport.Ms(r.Latency.ValueAtPercentile(50))} | {PhaseReport.Ms(r.Latency.ValueAtPercentile(99))} | " +
            $"{PhaseReport.Ms(r.Latency.Max)} | {r.Unanswered:N0} | {w.Row.DuplicateDeliveries:N0} | {w.Row.DeliveredPerSecond:N0} | {w.Row.CpuCores:N2} | " +
            $"{w.Rss / 1048576.0:N0} | {w.Handles} | {w.Threads} | {w.DbConnections} |");
    }

    private static string Table(List<Window> windows)
    {
        var text = new StringBuilder();
        text.AppendLine("| minute | publishes/s | p50 ms | p99 ms | max ms | unanswered | duplicate deliveries | pushes delivered/s | serve CPU (cores) | serve RSS MiB | open handles | threads | database connections |");
        text.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var w in windows)
        {
            text.AppendLine(Row(w));
        }

        return text.ToString();
    }

    private static string Summary(List<Window> windows)
    {
        var n = Math.Max(1, Math.Min(5, windows.Count / 3));
        var first = windows.Take(n).ToList();
        var last = windows.TakeLast(n).ToList();
        string Span(Func<Window, double> f, string format) => string.Create(CultureInfo.InvariantCulture,
            $"{first.Average(f).ToString(format, CultureInfo.InvariantCulture)} → {last.Average(f).ToString(format, CultureInfo.InvariantCulture)}");
        return $"first {n} minutes → last {n} (averages): RSS MiB {Span(w => w.Rss / 1048576.0, "N0")}, " +
               $"p99 ms {Span(w => w.Row.Result.Latency.ValueAtPercentile(99) / 1000.0, "N1")}, open handles {Span(w => w.Handles, "N0")}, " +
               $"threads {Span(w => w.Threads, "N0")}, database connections {Span(w => w.DbConnections, "N0")}; " +
               $"unanswered in all: {windows.Sum(w => w.Row.Result.Unanswered):N0}, duplicate deliveries in all: {windows.Sum(w => w.Row.DuplicateDeliveries):N0}";
    }
}
