using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Benchmarks.Support;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Npgsql;
using NpgsqlTypes;

namespace Monal.Push.Benchmarks.Ledger;

/// <summary>
/// Issue 2's benchmark: appended events/s with 1, 16 and 256 concurrent appenders, group commit on and off,
/// next to the raw ceiling of a plain 100-row multi-row INSERT from 8 connections on the same cluster.
/// </summary>
internal static class AppendBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = Option(args, "--seconds", 5);
        var appenders = OptionList(args, "--appenders", [1, 16, 256]);
        var writers = Option(args, "--writers", new LedgerOptions().Writers);
        await using var db = await BenchDatabase.StartAsync();
        Console.WriteLine($"# ledger append benchmark: {Environment.ProcessorCount} cores, {await db.ServerVersionAsync()}, {seconds} s per row");
        Console.WriteLine($"# command: dotnet run -c Release --project tests/Monal.Push.Benchmarks -- ledger --seconds {seconds}");
        var devices = Enumerable.Range(0, 10_000).Select(_ => Guid.CreateVersion7()).ToArray();

        var raw = await RawInsertCeilingAsync(db.DataSource, seconds);
        Console.WriteLine();
        Console.WriteLine("| appenders | group commit | events/s | mean batch | vs raw INSERT |");
        Console.WriteLine("| ---: | :---: | ---: | ---: | ---: |");
        var best = 0.0;
        foreach (var n in appenders)
        {
            foreach (var group in new[] { true, false })
            {
                var (rate, batch) = await AppendRateAsync(db.DataSource, group, n, seconds, devices, writers);
                if (group && n == appenders.Max())
                {
                    best = rate;
                }

                Console.WriteLine($"| {n} | {(group ? "on" : "off")} | {rate:N0} | {batch:N1} | {rate / raw:P0} |");
            }
        }

        Console.WriteLine($"| raw multi-row INSERT (8 connections × 100 rows) | – | {raw:N0} | 100 | 100% |");
        Console.WriteLine();
        Console.WriteLine($"ratio: group commit with {appenders.Max()} appenders reaches {best / raw:P0} of the raw INSERT ceiling ({raw / best:N2}x slower)");
        return 0;
    }

    private static async Task<(double Rate, double MeanBatch)> AppendRateAsync(
        NpgsqlDataSource dataSource, bool groupCommit, int appenders, int seconds, Guid[] devices, int writers)
    {
        await using var store = new EventStore(dataSource, TimeProvider.System, [], [],
            Options.Create(new LedgerOptions { GroupCommit = groupCommit, Writers = writers, MaxBatch = 512 }),
            NullLogger<EventStore>.Instance);
        long batches = 0;
        store.BatchCommitted += _ => Interlocked.Increment(ref batches);
        long count = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var now = DateTimeOffset.UtcNow;
        var sw = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, appenders).Select(async i =>
        {
            var random = new Random(i);
            while (!stop.IsCancellationRequested)
            {
                var device = devices[random.Next(devices.Length)];
                await store.AppendAsync(device, "device", ExpectedVersion.Any,
                    [new PushRequested(Guid.CreateVersion7(), device, "example.org", now, now.AddDays(1))]);
                Interlocked.Increment(ref count);
            }
        }).ToArray();
        await Task.WhenAll(tasks);
        var elapsed = sw.Elapsed.TotalSeconds;
        return (count / elapsed, batches == 0 ? 0 : (double)count / batches);
    }

    /// <summary>Events/s of a plain 100-row multi-row INSERT from 8 connections: the append ceiling of this cluster.</summary>
    internal static async Task<double> RawInsertCeilingAsync(NpgsqlDataSource dataSource, int seconds)
    {
        await using (var create = dataSource.CreateCommand("""
            create table if not exists bench_raw (seq bigserial primary key, stream_id uuid not null, version bigint not null,
                type text not null, data jsonb not null, "timestamp" timestamptz not null)
            """))
        {
            await create.ExecuteNonQueryAsync();
        }

        long count = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var sw = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, 8).Select(async _ =>
        {
            var ids = Enumerable.Range(0, 100).Select(_ => Guid.CreateVersion7()).ToArray();
            var versions = Enumerable.Range(1, 100).Select(v => (long)v).ToArray();
            var data = Enumerable.Range(0, 100).Select(_ =>
                $$"""{"push_id":"{{Guid.CreateVersion7()}}","device_id":"{{Guid.CreateVersion7()}}","domain":"example.org","requested_at":"2026-11-22T10:00:00+00:00","expires_at":"2026-11-23T10:00:00+00:00"}""").ToArray();
            while (!stop.IsCancellationRequested)
            {
                await using var cmd = dataSource.CreateCommand("""
                    insert into bench_raw (stream_id, version, type, data, "timestamp")
                    select s, v, 'push_requested.v1', d::jsonb, now() from unnest($1::uuid[], $2::bigint[], $3::text[]) as u(s, v, d)
                    """);
                cmd.Parameters.Add(new() { Value = ids, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
                cmd.Parameters.Add(new() { Value = versions, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
                cmd.Parameters.Add(new() { Value = data, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
                await cmd.ExecuteNonQueryAsync();
                Interlocked.Add(ref count, 100);
            }
        }).ToArray();
        await Task.WhenAll(tasks);
        return count / sw.Elapsed.TotalSeconds;
    }

    internal static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var v) ? v : fallback;
    }

    internal static int[] OptionList(string[] args, string name, int[] fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? [.. args[i + 1].Split(',').Select(int.Parse)] : fallback;
    }
}
