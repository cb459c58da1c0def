using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Benchmarks.Ledger;
using Monal.Push.Benchmarks.Support;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Load.Measuring;
using Npgsql;

namespace Monal.Push.Benchmarks.Purge;

/// <summary>
/// Issue 6's benchmark: <see cref="EventStore.PurgePushEventsAsync"/> (removes whole day partitions without reading
/// them, batches the boundary day) against a naive <c>DELETE FROM push_events WHERE "timestamp" &lt; cutoff</c>, on two
/// identical private clusters holding N push events, half older than the 14-day cutoff (spread over 20 days) and half
/// younger. While each runs, A appenders (default 64, closed loop) or a pacer issuing R appends per second
/// (<c>--rate R</c>, open loop) append PushRequested events through a real EventStore (group commit, default options)
/// into today's partition; their appends/s and p99 latency in a window before the purge (normal) and during it are
/// compared. <c>--removal drop</c> removes partitions with a plain DROP instead of DETACH … CONCURRENTLY.
/// </summary>
internal static class PurgeBenchmark
{
    private const int Devices = 10_000;

    public static async Task<int> RunAsync(string[] args)
    {
        var total = AppendBenchmark.Option(args, "--events", 2_000_000);
        var appenders = AppendBenchmark.Option(args, "--appenders", 64);
        var rate = AppendBenchmark.Option(args, "--rate", 0);
        var load = new Load(rate > 0 ? 0 : appenders, rate);
        var loadArgs = rate > 0 ? $"--rate {rate}" : $"--appenders {appenders}";
        var normalSeconds = AppendBenchmark.Option(args, "--normal-seconds", 5);
        var removal = args.SkipWhile(a => a != "--removal").Skip(1).FirstOrDefault() is "drop"
            ? PartitionRemoval.Drop
            : PartitionRemoval.DetachConcurrently;
        var now = DateTimeOffset.UtcNow;
        var cutoff = now.AddDays(-14);
        await using var purged = await BenchDatabase.StartAsync();
        await using var naive = await BenchDatabase.StartAsync();
        Console.WriteLine($"# purge benchmark: {Environment.ProcessorCount} cores, {await purged.ServerVersionAsync()}, load average {LoadAverage.Now()}");
        Console.WriteLine($"# command: dotnet run -c Release --project tests/Monal.Push.Benchmarks -- purge --events {total} {loadArgs} --normal-seconds {normalSeconds} --removal {(removal == PartitionRemoval.Drop ? "drop" : "detach")}");

        var devices = Enumerable.Range(0, Devices).Select(_ => Guid.CreateVersion7()).ToArray();
        var half = total / 2;
        FillRow Row(long i)
        {
            // The first half is 14 to 34 days old, the second half 0 to 14 days old; pairs of requested/delivered.
            var at = i < half
                ? cutoff.AddTicks(-(long)(TimeSpan.FromDays(20).Ticks * ((double)i / half)))
                : now.AddTicks(-(long)(TimeSpan.FromDays(14).Ticks * ((double)(i - half) / Math.Max(1, total - half)))).AddMinutes(-1);
            var device = devices[i / 2 % Devices];
            var version = 1 + (i / 2 / Devices * 2) + (i % 2);
            object e = i % 2 == 0
                ? new PushRequested(Guid.CreateVersion7(), device, "example.org", at, at.AddDays(1))
                : new PushDelivered(Guid.CreateVersion7(), device, Guid.NewGuid(), at, 3);
            return new FillRow(device, version, e, at);
        }

        var fill = Stopwatch.StartNew();
        var today = DateOnly.FromDateTime(now.UtcDateTime);
        foreach (var db in new[] { purged, naive })
        {
            await using var setup = Store(db.DataSource, removal);
            await setup.EnsurePushPartitionsAsync(today.AddDays(-35), today.AddDays(1));
            await LedgerFill.InsertAsync(db.DataSource, total, Row);
            await LedgerFill.WriteStreamsAsync(db.DataSource);
            // The fill bypasses the append, so it counts its days the way migration 0006 backfills them.
            await ExecAsync(db.DataSource, """
                insert into push_event_days (day, backend, events)
                select ("timestamp" at time zone 'UTC')::date, 0, count(*) from push_events group by 1
                """);
            await ExecAsync(db.DataSource, "vacuum analyze push_events");
            await ExecAsync(db.DataSource, "vacuum analyze push_event_days");
            // Start both measurements from a settled cluster: without it the checkpoint that writes the fill's
            // gigabytes runs during the windows, and the appends' commits wait on its disk writes.
            await ExecAsync(db.DataSource, "checkpoint");
        }

        var older = await CountAsync(purged.DataSource, cutoff);
        Console.WriteLine($"# filled {total:N0} events twice in {fill.Elapsed.TotalSeconds:N1} s; {older:N0} older than the cutoff");

        await using var store = Store(purged.DataSource, removal);
        // Split only to show where the time goes: whole days first (cutoff at the start of its day), then the boundary
        // day's rows; together they are exactly one PurgePushEventsAsync(cutoff) (the second call finds no whole day).
        var dayStart = new DateTimeOffset(DateOnly.FromDateTime(cutoff.UtcDateTime).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        TimeSpan wholeDays = default;
        var ours = await UnderIngestionAsync(purged.DataSource, devices, load, normalSeconds, async () =>
        {
            var watch = Stopwatch.StartNew();
            var days = await store.PurgePushEventsAsync(dayStart, 10_000, dryRun: false);
            wholeDays = watch.Elapsed;
            var rest = await store.PurgePushEventsAsync(cutoff, 10_000, dryRun: false);
            return (days.EventsDeleted + rest.EventsDeleted, days.PartitionsDropped + rest.PartitionsDropped);
        });
        var theirs = await UnderIngestionAsync(naive.DataSource, devices, load, normalSeconds, async () =>
            (await ExecAsync(naive.DataSource, """delete from push_events where "timestamp" < $1""", cutoff), 0));

        // The DELETE leaves the expired rows in the table's files as dead tuples until a VACUUM; time that too (without
        // ingestion), for what the naive way costs before the space is reclaimed. Not what the target compares.
        var vacuumWatch = Stopwatch.StartNew();
        await ExecAsync(naive.DataSource, "vacuum push_events");
        var vacuum = vacuumWatch.Elapsed;

        var leftPurged = await CountAsync(purged.DataSource, cutoff);
        var leftNaive = await CountAsync(naive.DataSource, cutoff);
        var removedPurged = older - leftPurged;
        var name = removal == PartitionRemoval.Drop ? "PurgePushEventsAsync (DROP)" : "PurgePushEventsAsync (DETACH CONCURRENTLY)";
        Console.WriteLine();
        Console.WriteLine("| method | events removed | reported | partitions dropped | seconds | older events left | appends/s normal | appends/s during | during/normal | p99 append normal / during (ms) | slowest append during (ms) |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        Console.WriteLine($"| {name} | {removedPurged:N0} | {ours.Deleted:N0} | {ours.Partitions} | {ours.Elapsed.TotalSeconds:N2} | {leftPurged:N0} | {Rate(ours.Normal)} | {Rate(ours.During)} | {Ratio(ours)} | {P99(ours)} | {ours.During.MaxLatencyMs:N0} |");
        Console.WriteLine($"| DELETE FROM push_events WHERE \"timestamp\" < cutoff | {older - leftNaive:N0} | {theirs.Deleted:N0} | 0 | {theirs.Elapsed.TotalSeconds:N2} | {leftNaive:N0} | {Rate(theirs.Normal)} | {Rate(theirs.During)} | {Ratio(theirs)} | {P99(theirs)} | {theirs.During.MaxLatencyMs:N0} |");
        Console.WriteLine();
        Console.WriteLine($"our purge: {wholeDays.TotalSeconds:N2} s removing whole days, {(ours.Elapsed - wholeDays).TotalSeconds:N2} s trimming the boundary day");
        Console.WriteLine($"ratio: naive DELETE / PurgePushEventsAsync = {theirs.Elapsed / ours.Elapsed:N1}x (target 10x); ingestion during our purge = {Ratio(ours)} of normal (target >= 80%), during the naive DELETE = {Ratio(theirs)}; load average after {LoadAverage.Now()}");
        Console.WriteLine($"the naive DELETE then needs VACUUM push_events ({vacuum.TotalSeconds:N2} s, no ingestion) to reclaim the space: DELETE + VACUUM / PurgePushEventsAsync = {(theirs.Elapsed + vacuum) / ours.Elapsed:N1}x");
        var exact = ours.Deleted == removedPurged;
        if (!exact)
        {
            Console.WriteLine($"ERROR: the purge reported {ours.Deleted:N0} events but removed {removedPurged:N0}");
        }

        return leftPurged == 0 && leftNaive == 0 && exact ? 0 : 1;
    }

    private static string Rate(Window w) => w.Appends == 0 && w.Seconds == 0 ? "–" : $"{w.Appends / w.Seconds:N0}";

    private static string Ratio(Measured m) =>
        m.Normal.Appends == 0 ? "–" : $"{m.During.Appends / m.During.Seconds / (m.Normal.Appends / m.Normal.Seconds):P0}";

    private static string P99(Measured m) => m.Normal.Appends == 0 ? "–" : $"{m.Normal.P99LatencyMs:N1} / {m.During.P99LatencyMs:N1}";

    private readonly record struct Window(long Appends, double Seconds, double P99LatencyMs, double MaxLatencyMs);

    private readonly record struct Measured(long Deleted, int Partitions, TimeSpan Elapsed, Window Normal, Window During);

    // Runs `purge` while appends go on through a real EventStore: closed loop (`appenders` callers, each appending
    // again as soon as its append returns) or, with `rate` > 0, open loop (a pacer issues `rate` appends per second
    // whatever the store does, and an append's latency counts from when it was due, so a stall is not hidden by
    // callers that stopped asking). Measures completed appends/s and append latency for normalSeconds before the
    // purge (normal) and for exactly as long as it runs (during).
    private static async Task<Measured> UnderIngestionAsync(
        NpgsqlDataSource dataSource, Guid[] devices, Load load, int normalSeconds, Func<Task<(long Deleted, int Partitions)>> purge)
    {
        if (load.Appenders == 0 && load.Rate == 0)
        {
            var quiet = Stopwatch.StartNew();
            var (d, p) = await purge();
            return new Measured(d, p, quiet.Elapsed, default, default);
        }

        await using var store = new EventStore(dataSource, TimeProvider.System, [], [], Options.Create(new LedgerOptions()),
            NullLogger<EventStore>.Instance);
        var gate = new Lock();
        long count = 0;
        var histogram = new LatencyHistogram();
        using var stop = new CancellationTokenSource();

        async Task AppendAsync(Guid device, long due)
        {
            var at = DateTimeOffset.UtcNow;
            await store.AppendAsync(device, "device", ExpectedVersion.Any,
                [new PushRequested(Guid.CreateVersion7(), device, "example.org", at, at.AddDays(1))]);
            var micros = (long)Stopwatch.GetElapsedTime(due).TotalMicroseconds;
            lock (gate)
            {
                count++;
                histogram.Record(micros);
            }
        }

        var tasks = load.Rate > 0
            ? [Task.Run(async () =>
            {
                var random = new Random(1);
                var pending = new List<Task>();
                var start = Stopwatch.GetTimestamp();
                long issued = 0;
                using var pacer = new PeriodicTimer(TimeSpan.FromMilliseconds(2));
                while (!stop.IsCancellationRequested && await pacer.WaitForNextTickAsync())
                {
                    var due = (long)(Stopwatch.GetElapsedTime(start).TotalSeconds * load.Rate);
                    for (; issued < due; issued++)
                    {
                        var dueAt = start + (long)(issued * (double)Stopwatch.Frequency / load.Rate);
                        pending.Add(AppendAsync(devices[random.Next(devices.Length)], dueAt));
                    }

                    pending.RemoveAll(t => t.IsCompleted);
                }

                await Task.WhenAll(pending);
            })]
            : Enumerable.Range(0, load.Appenders).Select(i => Task.Run(async () =>
            {
                var random = new Random(i);
                while (!stop.IsCancellationRequested)
                {
                    await AppendAsync(devices[random.Next(devices.Length)], Stopwatch.GetTimestamp());
                }
            })).ToArray();

        (long Count, long At) Mark()
        {
            lock (gate)
            {
                histogram = new LatencyHistogram();
                return (count, Stopwatch.GetTimestamp());
            }
        }

        Window Since((long Count, long At) start)
        {
            lock (gate)
            {
                return new Window(count - start.Count, Stopwatch.GetElapsedTime(start.At).TotalSeconds,
                    histogram.ValueAtPercentile(99) / 1000.0, histogram.Max / 1000.0);
            }
        }

        await Task.Delay(TimeSpan.FromSeconds(1)); // warm up: connections, JIT, group-commit writers
        var normalStart = Mark();
        await Task.Delay(TimeSpan.FromSeconds(normalSeconds));
        var normal = Since(normalStart);
        var duringStart = Mark();
        var (deleted, partitions) = await purge();
        var during = Since(duringStart);
        await stop.CancelAsync();
        await Task.WhenAll(tasks);
        return new Measured(deleted, partitions, TimeSpan.FromSeconds(during.Seconds), normal, during);
    }

    // Closed loop (Appenders callers) or open loop (Rate appends per second); neither: the removals alone.
    private readonly record struct Load(int Appenders, int Rate);

    private static EventStore Store(NpgsqlDataSource dataSource, PartitionRemoval removal) =>
        new(dataSource, TimeProvider.System, [], [], Options.Create(new LedgerOptions { GroupCommit = false, PartitionRemoval = removal }),
            NullLogger<EventStore>.Instance);

    private static async Task<long> CountAsync(NpgsqlDataSource dataSource, DateTimeOffset cutoff)
    {
        await using var cmd = dataSource.CreateCommand("""select count(*) from push_events where "timestamp" < $1""");
        cmd.Parameters.Add(new() { Value = cutoff });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task<int> ExecAsync(NpgsqlDataSource dataSource, string sql, params object[] args)
    {
        await using var cmd = dataSource.CreateCommand(sql);
        cmd.CommandTimeout = 0;
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        return await cmd.ExecuteNonQueryAsync();
    }
}
