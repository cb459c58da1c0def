using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Monal.Push.Benchmarks.Ledger;
using Monal.Push.Benchmarks.Support;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Projections;
using Monal.Push.Projections.Daemon;

namespace Monal.Push.Benchmarks.Projections;

/// <summary>
/// Issue 5's second figure: how far the async projections (push_log, domain_usage) trail the ledger while pushes are
/// appended at a steady rate. Open loop: a timer issues <c>--rate</c> pushes per second whatever the store does; each
/// push is a <c>PushRequested</c> followed, once it committed, by its <c>PushDelivered</c> (two events, as delivery
/// writes them), through the real group-committed <see cref="EventStore"/> with the inline device projection, while
/// the projection daemon of the same node folds them. Every 50 ms the checkpoints are sampled. Lag in events is the
/// high-water mark minus a projection's checkpoint; lag in time is how long the oldest event the projection has not
/// folded has been committed (from the commit times the appenders saw), 0 when it has folded everything.
/// </summary>
internal static class LagBenchmark
{
    private const int Devices = 10_000;

    public static async Task<int> RunAsync(string[] args)
    {
        var rate = AppendBenchmark.Option(args, "--rate", 5_000);
        var seconds = AppendBenchmark.Option(args, "--seconds", 30);
        var rangeSize = AppendBenchmark.Option(args, "--range-size", new ProjectionsOptions().RangeSize);
        await using var db = await BenchDatabase.StartAsync();
        Console.WriteLine($"# projection lag benchmark: {Environment.ProcessorCount} cores, {await db.ServerVersionAsync()}, load average {LoadAverage.Now()}");
        Console.WriteLine($"# command: dotnet run -c Release --project tests/Monal.Push.Benchmarks -- lag --rate {rate} --seconds {seconds} --range-size {rangeSize}");

        await using var provider = BenchNode.Build(db, new Dictionary<string, string?>
        {
            ["Projections:RunDaemon"] = "true",
            ["Projections:RangeSize"] = rangeSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var hosted = provider.GetServices<IHostedService>().ToArray();
        foreach (var service in hosted)
        {
            await service.StartAsync(CancellationToken.None);
        }

        var store = provider.GetRequiredService<EventStore>();
        var status = provider.GetRequiredService<ProjectionStatus>();
        var devices = Enumerable.Range(0, Devices).Select(_ => Guid.CreateVersion7()).ToArray();
        var now = DateTimeOffset.UtcNow;
        await Parallel.ForEachAsync(devices, new ParallelOptions { MaxDegreeOfParallelism = 256 }, async (d, ct) =>
            await store.AppendAsync(d, "device", ExpectedVersion.NoStream,
                [new DeviceRegistered(d, DeviceMode.Stateless, "monalProdiOS", "v1:AAAA", null, "example.org", now)], ct: ct));
        await WaitForZeroLagAsync(status);

        var commits = new ConcurrentQueue<(long Seq, long At)>();
        var samples = new List<(long At, long High, Dictionary<string, long> Positions)>();
        var appendLatencies = new ConcurrentQueue<double>();
        var pending = new ConcurrentDictionary<Task, byte>();
        long issued = 0;
        long failed = 0;
        var clock = Stopwatch.StartNew();
        var end = TimeSpan.FromSeconds(seconds);

        async Task PushAsync(long n)
        {
            var device = devices[n % Devices];
            var push = Guid.CreateVersion7();
            var started = clock.Elapsed;
            try
            {
                var at = DateTimeOffset.UtcNow;
                var requested = await store.AppendAsync(device, "device", ExpectedVersion.Any,
                    [new PushRequested(push, device, "example.org", at, at.AddDays(1))]);
                commits.Enqueue((requested.LastSequence, clock.ElapsedTicks));
                appendLatencies.Enqueue((clock.Elapsed - started).TotalMilliseconds);
                var delivered = await store.AppendAsync(device, "device", ExpectedVersion.Any,
                    [new PushDelivered(push, device, Guid.NewGuid(), DateTimeOffset.UtcNow, 3)]);
                commits.Enqueue((delivered.LastSequence, clock.ElapsedTicks));
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Interlocked.Increment(ref failed);
            }
        }

        var sampler = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(50));
            while (clock.Elapsed < end + TimeSpan.FromSeconds(2) && await timer.WaitForNextTickAsync())
            {
                var rows = await status.GetStatusAsync();
                var positions = rows.Where(r => r.Kind == "async").ToDictionary(r => r.Name, r => r.Position);
                samples.Add((clock.ElapsedTicks, rows[0].HighWater, positions));
            }
        });

        using (var pacer = new PeriodicTimer(TimeSpan.FromMilliseconds(5)))
        {
            while (clock.Elapsed < end && await pacer.WaitForNextTickAsync())
            {
                var due = (long)(clock.Elapsed.TotalSeconds * rate);
                while (issued < due)
                {
                    var task = PushAsync(issued++);
                    pending[task] = 0;
                    _ = task.ContinueWith(t => pending.TryRemove(t, out _), TaskScheduler.Default);
                }
            }
        }

        var sent = clock.Elapsed;
        await Task.WhenAll(pending.Keys.ToArray());
        var drained = await WaitForZeroLagAsync(status);
        await sampler;
        foreach (var service in hosted.Reverse())
        {
            await service.StopAsync(CancellationToken.None);
        }

        // For each sampled checkpoint P: the commit time of the oldest event above P that had committed by then.
        var bySeq = commits.OrderBy(c => c.Seq).ToArray();
        var suffixMin = new long[bySeq.Length + 1];
        suffixMin[bySeq.Length] = long.MaxValue;
        for (var i = bySeq.Length - 1; i >= 0; i--)
        {
            suffixMin[i] = Math.Min(bySeq[i].At, suffixMin[i + 1]);
        }

        var seqs = bySeq.Select(c => c.Seq).ToArray();
        Console.WriteLine();
        Console.WriteLine($"pushes issued: {issued:N0} in {sent.TotalSeconds:N1} s ({issued / sent.TotalSeconds:N0}/s, {2 * issued / sent.TotalSeconds:N0} events/s), failed appends: {failed}");
        var lat = appendLatencies.Order().ToArray();
        Console.WriteLine($"PushRequested append latency: p50 {Percentile(lat, 0.50):N1} ms, p99 {Percentile(lat, 0.99):N1} ms, max {lat[^1]:N1} ms");
        Console.WriteLine();
        Console.WriteLine("| projection | lag p50 (events) | lag p99 (events) | lag max (events) | lag p50 (ms) | lag p99 (ms) | lag max (ms) |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        var steady = samples.Where(s => s.At >= Stopwatch.Frequency * 2 && s.At <= sent.Ticks * (Stopwatch.Frequency / TimeSpan.TicksPerSecond)).ToArray();
        foreach (var name in steady[0].Positions.Keys.Order(StringComparer.Ordinal))
        {
            var events = steady.Select(s => (double)Math.Max(0, s.High - s.Positions[name])).Order().ToArray();
            var millis = steady.Select(s =>
            {
                var i = Array.BinarySearch(seqs, s.Positions[name] + 1);
                i = i < 0 ? ~i : i;
                var oldest = suffixMin[i];
                return oldest < s.At ? (s.At - oldest) * 1000.0 / Stopwatch.Frequency : 0;
            }).Order().ToArray();
            Console.WriteLine($"| {name} | {Percentile(events, 0.5):N0} | {Percentile(events, 0.99):N0} | {events[^1]:N0} | {Percentile(millis, 0.5):N0} | {Percentile(millis, 0.99):N0} | {millis[^1]:N0} |");
        }

        Console.WriteLine($"# {steady.Length} samples over the steady part (from 2 s until the last push was issued); zero lag again {drained.TotalMilliseconds:N0} ms after the last append");
        Console.WriteLine($"# load average after: {LoadAverage.Now()}");
        return failed == 0 ? 0 : 1;
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private static async Task<TimeSpan> WaitForZeroLagAsync(ProjectionStatus status)
    {
        var watch = Stopwatch.StartNew();
        while ((await status.GetStatusAsync()).Any(r => r.Lag > 0))
        {
            if (watch.Elapsed > TimeSpan.FromMinutes(2))
            {
                throw new TimeoutException("The projections did not catch up within 2 minutes.");
            }

            await Task.Delay(20);
        }

        return watch.Elapsed;
    }
}
