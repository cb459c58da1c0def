using System.Globalization;
using Monal.Push.Benchmarks.Ledger;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>Which traffic the measured phases carry (docs/benchmarks.md, "End to end").</summary>
internal enum BenchMix
{
    /// <summary>Devices picked at random among N, most of them published to for the first time (each creates its device).</summary>
    First,

    /// <summary>Every stateless device is created first (an unreported priming pass); the phases publish to devices that exist.</summary>
    Steady,

    /// <summary>The first-publish phases, the priming pass, then the steady-state phases.</summary>
    Both,
}

/// <summary>The options of `./bench` shared by the single run, the A/B mode and the soak.</summary>
internal sealed record E2eOptions
{
    public bool Quick { get; init; }

    public int Devices { get; init; } = 100_000;

    public int Outstanding { get; init; } = 512;

    /// <summary>
    /// serve's Maximum Pool Size; 0 (the default) leaves it out of the connection string, so serve runs with its own
    /// default budget (issue 19), as a new user's node does. It was 100 until the 2026-12-07 A/B (docs/benchmarks.md,
    /// "Issue 16, eighth pass").
    /// </summary>
    public int Pool { get; init; }

    public string? TracePath { get; init; }

    /// <summary>`--statements N`: each phase lists its top N statements from pg_stat_statements (0: off, the default).</summary>
    public int Statements { get; init; }

    public BenchMix Mix { get; init; } = BenchMix.Both;

    public int OpenSeconds { get; init; } = 20;

    public int ClosedSeconds { get; init; } = 30;

    public int WarmSeconds { get; init; } = 5;

    public int CeilingSeconds { get; init; } = 5;

    /// <summary>Switches added to serve's command line (after the benchmark's own, so they win).</summary>
    public IReadOnlyList<string> ServeSwitches { get; init; } = [];

    /// <summary>Environment variables added to serve's (the runtime's DOTNET_ knobs, which no switch reaches).</summary>
    public IReadOnlyDictionary<string, string> ServeEnvironment { get; init; } = new Dictionary<string, string>();

    public static E2eOptions Parse(string[] args)
    {
        var quick = args.Contains("--quick");
        var mix = Value(args, "--mix") ?? "both";
        return new E2eOptions
        {
            Quick = quick,
            Devices = AppendBenchmark.Option(args, "--devices", quick ? 10_000 : 100_000),
            Outstanding = AppendBenchmark.Option(args, "--outstanding", 512),
            Pool = AppendBenchmark.Option(args, "--pool", 0),
            TracePath = Value(args, "--trace") is { } trace ? Path.GetFullPath(trace) : null,
            Statements = args.Contains("--statements") ? AppendBenchmark.Option(args, "--statements", 8) : 0,
            Mix = mix switch
            {
                "first" => BenchMix.First,
                "steady" => BenchMix.Steady,
                "both" => BenchMix.Both,
                _ => throw new ArgumentException($"--mix {mix}: expected first, steady or both"),
            },
            OpenSeconds = AppendBenchmark.Option(args, "--open-seconds", quick ? 3 : 20),
            ClosedSeconds = AppendBenchmark.Option(args, "--closed-seconds", quick ? 5 : 30),
            WarmSeconds = quick ? 2 : 5,
            CeilingSeconds = quick ? 2 : 5,
            ServeSwitches = [.. args.Where(a => a.StartsWith("--serve:", StringComparison.Ordinal)).Select(a => "--" + a["--serve:".Length..])],
        };
    }

    public static string? Value(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    public static double Number(string[] args, string name, double fallback) =>
        Value(args, name) is { } text ? double.Parse(text, CultureInfo.InvariantCulture) : fallback;
}
