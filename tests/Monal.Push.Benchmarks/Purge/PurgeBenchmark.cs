using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Benchmarks.Ledger;
using Monal.Push.Benchmarks.Support;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Npgsql;

namespace Monal.Push.Benchmarks.Purge;

/// <summary>
/// Issue 6's benchmark: <see cref="EventStore.PurgePushEventsAsync"/> (drops whole day partitions, batches the boundary
/// day) against a naive <c>DELETE FROM push_events WHERE "timestamp" &lt; cutoff</c>, on two identical private clusters
/// holding N push events, half older than the 14-day cutoff (spread over 20 days) and half younger.
/// </summary>
internal static class PurgeBenchmark
{
    private const int Devices = 10_000;

    public static async Task<int> RunAsync(string[] args)
    {
        var total = AppendBenchmark.Option(args, "--events", 2_000_000);
        var now = DateTimeOffset.UtcNow;
        var cutoff = now.AddDays(-14);
        await using var purged = await BenchDatabase.StartAsync();
        await using var naive = await BenchDatabase.StartAsync();
        Console.WriteLine($"# purge benchmark: {Environment.ProcessorCount} cores, {await purged.ServerVersionAsync()}, load average {LoadAverage.Now()}");
        Console.WriteLine($"# command: dotnet run -c Release --project tests/Monal.Push.Benchmarks -- purge --events {total}");

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
            await using var setup = Store(db.DataSource);
            await setup.EnsurePushPartitionsAsync(today.AddDays(-35), today.AddDays(1));
            await LedgerFill.InsertAsync(db.DataSource, total, Row);
            await LedgerFill.WriteStreamsAsync(db.DataSource);
            await ExecAsync(db.DataSource, "vacuum analyze push_events");
        }

        var older = await CountAsync(purged.DataSource, cutoff);
        Console.WriteLine($"# filled {total:N0} events twice in {fill.Elapsed.TotalSeconds:N1} s; {older:N0} older than the cutoff");

        await using var store = Store(purged.DataSource);
        var watch = Stopwatch.StartNew();
        var result = await store.PurgePushEventsAsync(cutoff, 10_000, dryRun: false);
        var purgeTime = watch.Elapsed;

        watch.Restart();
        var deleted = await ExecAsync(naive.DataSource, """delete from push_events where "timestamp" < $1""", cutoff);
        var deleteTime = watch.Elapsed;

        var leftPurged = await CountAsync(purged.DataSource, cutoff);
        var leftNaive = await CountAsync(naive.DataSource, cutoff);
        Console.WriteLine();
        Console.WriteLine("| method | events removed | partitions dropped | seconds | older events left |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: |");
        Console.WriteLine($"| PurgePushEventsAsync(cutoff, 10_000) | {older - leftPurged:N0} | {result.PartitionsDropped} | {purgeTime.TotalSeconds:N2} | {leftPurged:N0} |");
        Console.WriteLine($"| DELETE FROM push_events WHERE \"timestamp\" < cutoff | {deleted:N0} | 0 | {deleteTime.TotalSeconds:N2} | {leftNaive:N0} |");
        Console.WriteLine();
        Console.WriteLine($"ratio: naive DELETE / PurgePushEventsAsync = {deleteTime / purgeTime:N1}x (target 10x); load average after {LoadAverage.Now()}");
        return leftPurged == 0 && leftNaive == 0 ? 0 : 1;
    }

    private static EventStore Store(NpgsqlDataSource dataSource) =>
        new(dataSource, TimeProvider.System, [], [], Options.Create(new LedgerOptions()), NullLogger<EventStore>.Instance);

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
