using System.Diagnostics;
using JasperFx;
using JasperFx.Events;
using Marten;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Benchmarks.Ledger;
using Monal.Push.Benchmarks.Support;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Load.Measuring;

namespace Monal.Push.Benchmarks.SideBySide;

/// <summary>
/// Marten 9 beside our store on one private cluster (docs/benchmarks.md "Marten side by side"). Appends: the `ledger`
/// workload (C callers, default 256, each appending one <see cref="PushRequested"/> to a random one of 10,000 device
/// streams, again as soon as the last returned) through our <see cref="EventStore"/> (group commit, default options),
/// through Marten (quick append, Guid streams) with <see cref="MartenGroupCommitter"/> in front, and through Marten
/// with one lightweight session per call; in alternating windows (each round starts with the next contender), after
/// a one-second warm-up of each. Then the push-log purge (<see cref="MartenPurge"/>).
/// </summary>
internal static class MartenBenchmark
{
    private const int Devices = 10_000;

    public static async Task<int> RunAsync(string[] args)
    {
        var quick = args.Contains("--quick");
        var seconds = AppendBenchmark.Option(args, "--seconds", quick ? 2 : 5);
        var rounds = AppendBenchmark.Option(args, "--rounds", quick ? 1 : 3);
        var callers = AppendBenchmark.Option(args, "--callers", 256);
        var events = AppendBenchmark.Option(args, "--events", quick ? 20_000 : 10_000_000);
        var writers = new LedgerOptions().Writers;
        await using var db = await BenchDatabase.StartAsync();
        Console.WriteLine($"# marten side by side: {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, load average {LoadAverage.Now()}, {await db.ServerVersionAsync()}");
        Console.WriteLine($"# command: dotnet run -c Release --project tests/Monal.Push.Benchmarks -- marten --seconds {seconds} --rounds {rounds} --callers {callers} --events {events}");
        using var marten = OpenMarten(db.ConnectionString);
        await marten.Storage.ApplyAllConfiguredChangesToDatabaseAsync();

        await using var ours = new EventStore(db.DataSource, TimeProvider.System, [], [],
            Options.Create(new LedgerOptions()), NullLogger<EventStore>.Instance);
        await using var committer = new MartenGroupCommitter(marten, writers, new LedgerOptions().MaxBatch, sharded: false);
        await using var sharded = new MartenGroupCommitter(marten, writers, new LedgerOptions().MaxBatch, sharded: true);
        Contender[] contenders =
        [
            new("ours: EventStore, group commit", (d, e) => ours.AppendAsync(d, "device", ExpectedVersion.Any, [e])),
            new($"Marten 9 quick append + group committer ({writers} writers, one queue)", (d, e) => committer.AppendAsync(d, e)),
            new($"Marten 9 quick append + group committer ({writers} writers, streams sharded by writer)", (d, e) => sharded.AppendAsync(d, e)),
            new("Marten 9 quick append, one session per call", async (d, e) =>
            {
                await using var session = marten.LightweightSession();
                session.Events.Append(d, e);
                await session.SaveChangesAsync();
            }),
        ];
        var devices = Enumerable.Range(0, Devices).Select(_ => Guid.CreateVersion7()).ToArray();
        await CreateStreamsAsync(ours, marten, devices);
        foreach (var c in contenders)
        {
            await RunWindowAsync(c, callers, TimeSpan.FromSeconds(1), devices);
        }

        var windows = contenders.ToDictionary(c => c, _ => new List<Window>());
        for (var r = 0; r < rounds; r++)
        {
            for (var k = 0; k < contenders.Length; k++)
            {
                var c = contenders[(r + k) % contenders.Length];
                windows[c].Add(await RunWindowAsync(c, callers, TimeSpan.FromSeconds(seconds), devices));
            }
        }

        Console.WriteLine();
        Console.WriteLine($"| store ({callers} callers, one event per call) | events/s per window | events/s mean | vs ours | p50 ms | p99 ms | failed appends |");
        Console.WriteLine("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
        var baseline = windows[contenders[0]].Average(w => w.Rate);
        foreach (var c in contenders)
        {
            var ws = windows[c];
            var all = new LatencyHistogram();
            ws.ForEach(w => all.Add(w.Latency));
            var mean = ws.Average(w => w.Rate);
            Console.WriteLine($"| {c.Name} | {string.Join(" / ", ws.Select(w => w.Rate.ToString("N0")))} | {mean:N0} | {mean / baseline:P0} | {all.ValueAtPercentile(50) / 1000.0:N1} | {all.ValueAtPercentile(99) / 1000.0:N1} | {ws.Sum(w => w.Failed)} |");
        }

        foreach (var (name, c) in new[] { ("one queue", committer), ("sharded", sharded) })
        {
            Console.WriteLine($"# Marten group committer, {name}: {c.Batches:N0} transactions (warm-up included), {c.FailedBatches:N0} shared batch attempts failed on a version race and were retried");
        }

        Console.WriteLine($"# load average after the appends: {LoadAverage.Now()}");
        if (events > 0)
        {
            await MartenPurge.RunAsync(db, events);
        }

        return 0;
    }

    /// <summary>
    /// Every device stream exists in both stores before the windows, as a registered device's does, so the windows
    /// measure appends to existing streams only (not stream creation) in both.
    /// </summary>
    private static async Task CreateStreamsAsync(EventStore ours, DocumentStore marten, Guid[] devices)
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var chunk in devices.Chunk(500))
        {
            await using var session = marten.LightweightSession();
            foreach (var d in chunk)
            {
                session.Events.Append(d, new PushRequested(Guid.CreateVersion7(), d, "example.org", now, now.AddDays(1)));
            }

            await session.SaveChangesAsync();
            await Task.WhenAll(chunk.Select(d =>
                ours.AppendAsync(d, "device", ExpectedVersion.Any, [new PushRequested(Guid.CreateVersion7(), d, "example.org", now, now.AddDays(1))])));
        }
    }

    internal static DocumentStore OpenMarten(string connectionString) => DocumentStore.For(opts =>
    {
        opts.Connection(connectionString);
        opts.DatabaseSchemaName = "marten";
        opts.AutoCreateSchemaObjects = AutoCreate.CreateOrUpdate;
        opts.Events.StreamIdentity = StreamIdentity.AsGuid;
        opts.Events.AppendMode = EventAppendMode.Quick;
        opts.Events.MapEventType<PushRequested>("push_requested.v1");
    });

    private static async Task<Window> RunWindowAsync(Contender contender, int callers, TimeSpan length, Guid[] devices)
    {
        long failed = 0;
        using var stop = new CancellationTokenSource(length);
        var now = DateTimeOffset.UtcNow;
        var sw = Stopwatch.StartNew();
        var histograms = await Task.WhenAll(Enumerable.Range(0, callers).Select(async i =>
        {
            var histogram = new LatencyHistogram();
            var random = new Random(i);
            while (!stop.IsCancellationRequested)
            {
                var device = devices[random.Next(devices.Length)];
                var started = Stopwatch.GetTimestamp();
                try
                {
                    await contender.Append(device, new PushRequested(Guid.CreateVersion7(), device, "example.org", now, now.AddDays(1)));
                    histogram.Record((long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // A pool timeout, a deadlock, a version conflict: counted, never retried, so the rate is what
                    // succeeded.
                    Interlocked.Increment(ref failed);
                }
            }

            return histogram;
        }));
        var elapsed = sw.Elapsed.TotalSeconds;
        var merged = new LatencyHistogram();
        foreach (var h in histograms)
        {
            merged.Add(h);
        }

        return new Window(merged.TotalCount / elapsed, merged, failed);
    }

    private sealed record Contender(string Name, Func<Guid, PushRequested, Task> Append);

    private sealed record Window(double Rate, LatencyHistogram Latency, long Failed);
}
