using Monal.Push.Benchmarks.Delivery;
using Monal.Push.Benchmarks.EndToEnd;
using Monal.Push.Benchmarks.Ledger;
using Monal.Push.Benchmarks.Projections;
using Monal.Push.Benchmarks.Purge;
using Monal.Push.Benchmarks.SideBySide;

// Benchmarks are programs, never tests (README: "Benchmarks"). Each verb prints one table and the command that
// produced it; docs/benchmarks.md keeps the figures.
var verb = args.Length > 0 ? args[0] : "help";
var rest = args.Skip(1).ToArray();
switch (verb)
{
    case "ledger":
        return await AppendBenchmark.RunAsync(rest);
    case "e2e":
        return await EndToEndBenchmark.RunAsync(rest);
    case "rebuild":
        return await RebuildBenchmark.RunAsync(rest);
    case "lag":
        return await LagBenchmark.RunAsync(rest);
    case "purge":
        return await PurgeBenchmark.RunAsync(rest);
    case "delivery":
        return await DeliveryBenchmark.RunAsync(rest);
    case "marten":
        return await MartenBenchmark.RunAsync(rest);
    case "micro":
        BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(AppendBenchmark).Assembly).Run(rest);
        return 0;
    default:
        Console.WriteLine("""
            usage: dotnet run -c Release --project tests/Monal.Push.Benchmarks -- <verb> [options]
              ledger [--seconds N] [--appenders 1,16,256]   appended events/s, group commit on/off, vs raw multi-row INSERT
              e2e [--quick] [--devices N] [--outstanding N] [--pool N] [--mix first|steady|both] [--serve:Section:Key=Value]
                  [--open-seconds N] [--closed-seconds N] [--trace F] [--statements N]
                                                          end to end: serve + PostgreSQL + mock APNs under the load generator
                                                          (what ./bench runs; docs/benchmarks.md "End to end")
              e2e --ab A B [--rounds N] [e2e options]     A/B: two builds or settings alternated N times, medians and spreads
                                                          (A, B: '.' = this build, or a git ref; each may add +--Section:Key=Value)
              e2e --soak [--minutes 30] [--rate 1000]     one open-loop rate held for minutes, one row a minute (RSS, handles, p99)
              rebuild [--events N]                          projection rebuild events/s per projection (issue 5)
              lag [--rate N] [--seconds N] [--range-size N] async projection lag while N pushes/s are appended (issue 5)
              purge [--events N] [--appenders 64] [--normal-seconds 5] [--removal detach|drop]
                                                          partition purge vs naive DELETE, ingestion during each (issue 6)
              delivery [--pushes N] [--backlog]             dispatcher pushes/s and latency vs raw HTTP/2 ceiling (issue 4)
              marten [--quick] [--seconds N] [--rounds N] [--callers 256] [--events N]
                                                          Marten 9 beside our store: appends in alternating windows, then
                                                          the push-log purge of N events (docs/benchmarks.md "Marten side by side")
              micro [BenchmarkDotNet switches]              BenchmarkDotNet micro-benchmarks
            """);
        return verb == "help" ? 0 : 2;
}
