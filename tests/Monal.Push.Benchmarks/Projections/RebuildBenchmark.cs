using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Benchmarks.Ledger;
using Monal.Push.Benchmarks.Support;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Projections;
using Monal.Push.Projections.Rebuilding;

namespace Monal.Push.Benchmarks.Projections;

/// <summary>
/// Issue 5's benchmark: events/s of <see cref="ProjectionRebuilder.RebuildAsync(string?, IProgress{ValueTuple{long, long}}?, CancellationToken)"/>
/// per projection over a ledger of N events (10,000 registrations, then PushRequested/PushDelivered pairs).
/// </summary>
internal static class RebuildBenchmark
{
    private const int Devices = 10_000;

    public static async Task<int> RunAsync(string[] args)
    {
        var total = AppendBenchmark.Option(args, "--events", 1_000_000);
        await using var db = await BenchDatabase.StartAsync();
        Console.WriteLine($"# projection rebuild benchmark: {Environment.ProcessorCount} cores, {await db.ServerVersionAsync()}, load average {LoadAverage.Now()}");
        Console.WriteLine($"# command: dotnet run -c Release --project tests/Monal.Push.Benchmarks -- rebuild --events {total}");

        await using var provider = BenchNode.Build(db, new Dictionary<string, string?> { ["Projections:RunDaemon"] = "false" });
        var store = provider.GetRequiredService<EventStore>();

        var now = DateTimeOffset.UtcNow;
        var start = now.AddHours(-1);
        var today = DateOnly.FromDateTime(now.UtcDateTime);
        await store.EnsurePushPartitionsAsync(today.AddDays(-1), today.AddDays(1));
        var devices = Enumerable.Range(0, Devices).Select(_ => Guid.CreateVersion7()).ToArray();
        var fill = Stopwatch.StartNew();
        var registrations = Math.Min(Devices, total);
        await LedgerFill.InsertAsync(db.DataSource, registrations, i => new FillRow(devices[i], 1,
            new DeviceRegistered(devices[i], DeviceMode.Stateless, "monalProdiOS", "v1:AAAA", null, "example.org", start), start));
        var pushes = total - registrations;
        var pushIds = new Guid[(pushes + 1) / 2];
        await LedgerFill.InsertAsync(db.DataSource, pushes, i =>
        {
            // Pair k is PushRequested (i = 2k) then PushDelivered (i = 2k + 1) on device k % Devices.
            var k = i / 2;
            var device = devices[k % Devices];
            var version = 2 + (k / Devices * 2) + (i % 2);
            var at = start.AddMilliseconds(k % 3_000_000);
            if (i % 2 == 0)
            {
                pushIds[k] = Guid.CreateVersion7();
                return new FillRow(device, version, new PushRequested(pushIds[k], device, "example.org", at, at.AddDays(1)), at);
            }

            return new FillRow(device, version, new PushDelivered(pushIds[k], device, Guid.NewGuid(), at.AddMilliseconds(3), 3), at.AddMilliseconds(3));
        });
        await LedgerFill.WriteStreamsAsync(db.DataSource);
        Console.WriteLine($"# filled {total:N0} events in {fill.Elapsed.TotalSeconds:N1} s");

        var rebuilder = provider.GetRequiredService<ProjectionRebuilder>();
        var watch = Stopwatch.StartNew();
        var results = await rebuilder.RebuildAsync(null);
        var all = watch.Elapsed;
        Console.WriteLine();
        Console.WriteLine("| projection | events replayed | seconds | events/s | target 100,000 |");
        Console.WriteLine("| --- | ---: | ---: | ---: | :---: |");
        foreach (var r in results)
        {
            Console.WriteLine($"| {r.Name} | {r.Events:N0} | {r.Elapsed.TotalSeconds:N2} | {r.EventsPerSecond:N0} | {(r.EventsPerSecond > 100_000 ? "met" : "missed")} |");
        }

        Console.WriteLine($"| all (RebuildAsync(null)) | {results.Sum(r => r.Events):N0} | {all.TotalSeconds:N2} | {results.Sum(r => r.Events) / all.TotalSeconds:N0} | |");
        Console.WriteLine($"# load average after: {LoadAverage.Now()}");
        return 0;
    }
}
