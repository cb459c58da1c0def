using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// `./bench --ab A B [--rounds N]`: tells two builds or two settings apart when single runs of the same code vary by 2x.
/// Each variant is <c>REF[+SETTING…]</c>: REF is <c>.</c> (this checkout's Release build) or a git commit, branch or
/// tag (checked out into a temporary worktree and built there once); each <c>+--Section:Key=Value</c> is added to
/// serve's command line, each <c>+env:NAME=VALUE</c> to its environment (the runtime's knobs, which no switch reaches,
/// such as <c>+env:DOTNET_GCGen0MaxBudget=1000000</c>), and <c>+pool:N</c> sets serve's Maximum Pool Size as
/// <c>--pool N</c> does (0: serve's own default). The rounds alternate the order (A B, B A, A B…) so that a
/// machine getting busier or quieter charges both alike; each run is a fresh stack (new cluster, new serve). The table
/// gives, per phase and figure, each variant's median and its spread (lowest–highest) and the change of the medians,
/// marked "clear" only when the two spreads do not overlap: report only those.
/// </summary>
internal static class AbBenchmark
{
    private sealed record Variant(string Label, string Spec, string Dll, IReadOnlyList<string> Switches, IReadOnlyDictionary<string, string> Environment, int? Pool);

    private sealed record Figure(string Name, Func<PhaseRow, double> Read, string Format, bool HigherIsBetter);

    private static readonly Figure[] Figures =
    [
        new("publishes/s", r => r.Result.RepliesPerSecond, "N0", true),
        new("p50 ms", r => r.Result.Latency.ValueAtPercentile(50) / 1000.0, "N1", false),
        new("p99 ms", r => r.Result.Latency.ValueAtPercentile(99) / 1000.0, "N1", false),
        new("delivered/s", r => r.DeliveredPerSecond, "N0", true),
        new("CPU µs/publish", r => r.CpuMicrosPerPublish, "N0", false),
        new("database CPU µs/publish", r => r.DatabaseCpuMicrosPerPublish, "N0", false),
        new("benchmark process CPU µs/publish", r => r.RigCpuMicrosPerPublish, "N0", false),
        new("peak RSS MiB", r => r.PeakRssBytes / 1048576.0, "N0", false),
        new("unanswered", r => r.Result.Unanswered, "N0", false),
        new("duplicates", r => r.DuplicateDeliveries, "N0", false),
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        var at = Array.IndexOf(args, "--ab");
        if (at < 0 || at + 2 >= args.Length)
        {
            Console.Error.WriteLine("usage: ./bench --ab A B [--rounds N] [--quick] [--mix first|steady|both] …  (A, B: '.' or a git ref, each optionally +--Section:Key=Value…)");
            return 2;
        }

        var specs = (A: args[at + 1], B: args[at + 2]);
        var rest = args.Where((_, i) => i < at || i > at + 2).ToArray();
        var rounds = Rounds(rest);
        var options = E2eOptions.Parse(rest);
        var command = "./bench " + string.Join(' ', args);
        var cap = TimeSpan.FromMinutes(10 + (rounds * 2 * (options.Quick ? 3 : 12)));
        return await BenchSession.RunAsync(cap, async ct =>
        {
            var root = BenchSession.RepositoryRoot();
            var builds = new List<string>();
            try
            {
                var a = await PrepareAsync("A", specs.A, root, builds, ct);
                var b = await PrepareAsync("B", specs.B, root, builds, ct);
                var loadBefore = BenchSession.LoadAverage();
                var runs = new Dictionary<string, List<EndToEndBenchmark.Run>> { ["A"] = [], ["B"] = [] };
                string pgVersion = "";
                for (var round = 1; round <= rounds; round++)
                {
                    foreach (var variant in round % 2 == 1 ? new[] { a, b } : [b, a])
                    {
                        BenchSession.Step($"round {round}/{rounds}: {variant.Label} = {variant.Spec}");
                        var run = await EndToEndBenchmark.RunOnceAsync(
                            options with { ServeSwitches = [.. options.ServeSwitches, .. variant.Switches], ServeEnvironment = variant.Environment, Pool = variant.Pool ?? options.Pool, TracePath = null },
                            variant.Dll, m => BenchSession.Step($"  {variant.Label}: {m}"), ct);
                        runs[variant.Label].Add(run);
                        pgVersion = run.PgVersion;
                    }
                }

                Console.WriteLine();
                Console.WriteLine(Table(a, b, runs["A"], runs["B"]));
                Console.WriteLine();
                Console.WriteLine($"command: {command}");
                Console.WriteLine(BenchSession.Machine(pgVersion));
                Console.WriteLine($"load average (1, 5, 15 min) before: {loadBefore}; after: {BenchSession.LoadAverage()}");
                return 0;
            }
            finally
            {
                foreach (var folder in builds)
                {
                    await GitAsync(root, ["worktree", "remove", "--force", folder], CancellationToken.None, check: false);
                }
            }
        });
    }

    private static int Rounds(string[] args)
    {
        var rounds = Ledger.AppendBenchmark.Option(args, "--rounds", 3);
        return rounds >= 1 ? rounds : throw new ArgumentException("--rounds must be at least 1");
    }

    private static async Task<Variant> PrepareAsync(string label, string spec, string root, List<string> builds, CancellationToken ct)
    {
        var parts = spec.Split('+');
        var reference = parts[0];
        var settings = parts.Skip(1).Where(p => p.Length > 0).ToArray();
        var switches = settings.Where(s => s.StartsWith("--", StringComparison.Ordinal)).ToArray();
        var environment = new Dictionary<string, string>();
        int? pool = null;
        foreach (var setting in settings.Except(switches))
        {
            if (setting.StartsWith("pool:", StringComparison.Ordinal))
            {
                pool = int.TryParse(setting["pool:".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var size)
                    ? size
                    : throw new BenchmarkFailedException($"{spec}: pool:N takes serve's Maximum Pool Size, a whole number (0: serve's default)");
                continue;
            }

            var eq = setting.IndexOf('=', StringComparison.Ordinal);
            if (!setting.StartsWith("env:", StringComparison.Ordinal) || eq <= "env:".Length)
            {
                throw new BenchmarkFailedException($"{spec}: each setting after '+' must be a serve switch such as --Ingest:MaxConcurrentPublishes=128, an environment variable such as env:DOTNET_GCGen0MaxBudget=1000000 or pool:25");
            }

            environment[setting["env:".Length..eq]] = setting[(eq + 1)..];
        }

        if (reference is "." or "")
        {
            return new Variant(label, spec, BenchSession.ServeDll(root), switches, environment, pool);
        }

        var commit = (await GitAsync(root, ["rev-parse", "--verify", reference + "^{commit}"], ct)).Trim();
        var folder = Path.Combine(Path.GetTempPath(), $"monal-ab-{commit[..12]}-{label}");
        if (Directory.Exists(folder))
        {
            await GitAsync(root, ["worktree", "remove", "--force", folder], ct, check: false);
        }

        BenchSession.Step($"{label}: building {reference} ({commit[..12]}) in {folder}");
        await GitAsync(root, ["worktree", "add", "--detach", folder, commit], ct);
        builds.Add(folder);
        await RunAsync("dotnet", ["build", "-c", "Release", Path.Combine(folder, "src", "Cli"), "-nologo", "-v", "quiet", "-clp:ErrorsOnly;NoSummary"], folder, ct);
        return new Variant(label, $"{spec} ({commit[..12]})", BenchSession.ServeDll(folder), switches, environment, pool);
    }

    private static async Task<string> GitAsync(string root, string[] args, CancellationToken ct, bool check = true) =>
        await RunAsync("git", ["-C", root, .. args], root, ct, check);

    private static async Task<string> RunAsync(string file, string[] args, string directory, CancellationToken ct, bool check = true)
    {
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info) ?? throw new BenchmarkFailedException($"could not start {file}");
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        if (check && process.ExitCode != 0)
        {
            throw new BenchmarkFailedException($"{file} {string.Join(' ', args)} failed ({process.ExitCode}):\n{await output}{await error}");
        }

        return await output;
    }

    private static string Table(Variant a, Variant b, List<EndToEndBenchmark.Run> runsA, List<EndToEndBenchmark.Run> runsB)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"A = {a.Spec}");
        text.AppendLine(CultureInfo.InvariantCulture, $"B = {b.Spec}");
        text.AppendLine(CultureInfo.InvariantCulture, $"{runsA.Count} runs each, alternating; median [lowest–highest]; 'clear' when the spreads do not overlap");
        text.AppendLine();
        text.AppendLine("| phase | figure | A | B | B vs A | |");
        text.AppendLine("| --- | --- | ---: | ---: | ---: | --- |");
        var phases = runsA[0].Rows.Select(r => r.Result.Phase.Name).ToList();
        foreach (var phase in phases)
        {
            foreach (var figure in Figures)
            {
                var va = Values(runsA, phase, figure);
                var vb = Values(runsB, phase, figure);
                if (va.Length == 0 || vb.Length == 0)
                {
                    continue;
                }

                var (ma, mb) = (Median(va), Median(vb));
                var change = ma != 0 ? ((mb - ma) / Math.Abs(ma)).ToString("+0%;-0%;0%", CultureInfo.InvariantCulture) : (mb == 0 ? "=" : "from 0");
                var clear = va.Max() < vb.Min() || vb.Max() < va.Min();
                var verdict = !clear ? "" : (mb > ma) == figure.HigherIsBetter ? "clear: B better" : "clear: B worse";
                text.AppendLine(CultureInfo.InvariantCulture,
                    $"| {phase} | {figure.Name} | {Describe(va, figure.Format)} | {Describe(vb, figure.Format)} | {change} | {verdict} |");
            }
        }

        return text.ToString();
    }

    private static double[] Values(List<EndToEndBenchmark.Run> runs, string phase, Figure figure) =>
        [.. runs.SelectMany(r => r.Rows.Where(row => row.Result.Phase.Name == phase)).Select(figure.Read)];

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private static string Describe(double[] values, string format) =>
        string.Create(CultureInfo.InvariantCulture, $"{Median(values).ToString(format, CultureInfo.InvariantCulture)} [{values.Min().ToString(format, CultureInfo.InvariantCulture)}–{values.Max().ToString(format, CultureInfo.InvariantCulture)}]");
}
