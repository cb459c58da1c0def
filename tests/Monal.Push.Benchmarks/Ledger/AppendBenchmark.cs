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
        var fillfactor = Option(args, "--streams-fillfactor", 0);
        if (fillfactor > 0)
        {
            await using var alter = db.DataSource.CreateCommand($"alter table streams set (fillfactor = {fillfactor})");
            await alter.ExecuteNonQueryAsync();
        }

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
        if (args.Contains("--ladder"))
        {
            await LadderAsync(db, seconds, devices);
        }

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

    /// <summary>
    /// Where the distance to the raw ceiling goes: the same 100-row statements from 8 connections, adding one of the
    /// store's guarantees at a time, then the store's own append statement with prebuilt parameters (no per-append
    /// client work), next to the store itself.
    /// </summary>
    private static async Task LadderAsync(BenchDatabase db, int seconds, Guid[] devices)
    {
        var dataSource = db.DataSource;
        await using (var partition = dataSource.CreateCommand("select monal_ensure_push_partition((now() at time zone 'utc')::date)"))
        {
            await partition.ExecuteNonQueryAsync();
        }

        var random = new Random(7);
        Guid[] Pick() => [.. devices.OrderBy(_ => random.Next()).Take(100).Order()];
        byte[] Json(Guid d) => System.Text.Encoding.UTF8.GetBytes(
            $$"""{"push_id":"{{Guid.CreateVersion7()}}","device_id":"{{d}}","domain":"example.org","requested_at":"2026-11-22T10:00:00+00:00","expires_at":"2026-11-23T10:00:00+00:00"}""");
        var sets = Enumerable.Range(0, 64).Select(_ => Pick()).ToArray();
        var json = sets.Select(set => set.Select(Json).ToArray()).ToArray();
        var ones = Enumerable.Repeat(1L, 100).ToArray();

        NpgsqlCommand Plain(int i, string sql)
        {
            var cmd = new NpgsqlCommand(sql);
            cmd.Parameters.Add(new() { Value = sets[i % sets.Length], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
            cmd.Parameters.Add(new() { Value = json[i % json.Length], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
            return cmd;
        }

        var rawRung = await Measured(db, () => RawInsertCeilingAsync(dataSource, seconds));
        var intoPushEvents = await Measured(db, () => RateAsync(dataSource, seconds, i => Plain(i, """
            insert into push_events (seq, stream_id, version, type, data, "timestamp")
            select nextval('event_seq'), s, 1, 'push_requested.v1', d, now() from unnest($1::uuid[], $2::jsonb[]) as u(s, d)
            """)));
        var withStreams = await Measured(db, () => RateAsync(dataSource, seconds, i => Plain(i, """
            with s as (
                insert into streams as t (id, type, version, created_at, updated_at)
                select id, 'device', 1, now(), now() from unnest($1::uuid[]) as id order by id
                on conflict (id) do update set version = t.version + 1, updated_at = excluded.updated_at
                returning t.id, t.version)
            insert into push_events (seq, stream_id, version, type, data, "timestamp")
            select nextval('event_seq'), s.id, s.version, 'push_requested.v1', u.d, now()
            from unnest($1::uuid[], $2::jsonb[]) as u(id, d) join s on s.id = u.id
            """)));
        var ord = Enumerable.Range(0, 100).ToArray();
        var types = Enumerable.Repeat("device", 100).ToArray();
        var any = Enumerable.Repeat(-1L, 100).ToArray();
        var eventTypes = Enumerable.Repeat("push_requested.v1", 100).ToArray();
        var noMeta = new byte[]?[100];
        var push = Enumerable.Repeat(true, 100).ToArray();
        // The store's twelve parameters, prebuilt (the lean variant leaves $6, the order, unused).
        NpgsqlCommand StoreShaped(int i, string sql)
        {
            var cmd = new NpgsqlCommand(sql);
            cmd.Parameters.Add(new() { Value = sets[i % sets.Length], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
            cmd.Parameters.Add(new() { Value = types, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            cmd.Parameters.Add(new() { Value = ones, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            cmd.Parameters.Add(new() { Value = any, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            cmd.Parameters.Add(new() { Value = DateTimeOffset.UtcNow, NpgsqlDbType = NpgsqlDbType.TimestampTz });
            cmd.Parameters.Add(new() { Value = ord, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
            cmd.Parameters.Add(new() { Value = sets[i % sets.Length], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
            cmd.Parameters.Add(new() { Value = ones, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            cmd.Parameters.Add(new() { Value = eventTypes, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            cmd.Parameters.Add(new() { Value = json[i % json.Length], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
            cmd.Parameters.Add(new() { Value = noMeta, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
            cmd.Parameters.Add(new() { Value = push, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Boolean });
            return cmd;
        }

        var statement = await Measured(db, () => RateAsync(dataSource, seconds, i => StoreShaped(i, EventStore.AppendSql)));
        var lean = await Measured(db, () => RateAsync(dataSource, seconds, i => StoreShaped(i, LeanSql)));
        var store = await Measured(db, async () => (await AppendRateAsync(dataSource, true, AppendersForLadder, seconds, devices, new LedgerOptions().Writers)).Rate);
        var raw = rawRung.Rate;
        Console.WriteLine();
        Console.WriteLine("| what runs (8 connections, 100-row statements unless noted) | events/s | vs raw INSERT | server CPU µs/event | client CPU µs/event |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: |");
        void Row(string what, Rung r) =>
            Console.WriteLine($"| {what} | {r.Rate:N0} | {r.Rate / raw:P0} | {r.ServerMicros:N1} | {r.ClientMicros:N1} |");
        Row("raw INSERT into a table with a primary key only", rawRung);
        Row("INSERT into push_events (day partition, primary key + (stream_id, version) index, event_seq)", intoPushEvents);
        Row("... plus the streams upsert that assigns versions", withStreams);
        Row("the store's append statement (versions, expected-version check, both tables, positions in order)", statement);
        Row("lean variant of the append statement (no ordering, no version check; not correct, for comparison)", lean);
        Row($"EventStore, group commit, {AppendersForLadder} appenders, one event per append", store);
    }

    private readonly record struct Rung(double Rate, double ServerMicros, double ClientMicros);

    private static async Task<Rung> Measured(BenchDatabase db, Func<Task<double>> run)
    {
        var server = db.ServerCpu();
        var client = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        var rate = await run();
        var events = rate * watch.Elapsed.TotalSeconds;
        return new Rung(
            rate,
            (db.ServerCpu() - server).TotalMicroseconds / events,
            (Process.GetCurrentProcess().TotalProcessorTime - client).TotalMicroseconds / events);
    }

    private const int AppendersForLadder = 256;

    private const string LeanSql = """
        with s as (
            insert into streams as t (id, type, version, created_at, updated_at)
            select id, type, cnt, $5, $5 from unnest($1::uuid[], $2::text[], $3::bigint[]) as u(id, type, cnt)
            on conflict (id) do update set version = t.version + excluded.version, updated_at = excluded.updated_at
            returning t.id, t.version
        ), e as (
            select x.stream_id, s.version - 1 + x.off as version, x.type, x.data, x.meta, x.is_push, nextval('event_seq') as seq
            from unnest($7::uuid[], $8::bigint[], $9::text[], $10::jsonb[], $11::jsonb[], $12::bool[])
                 as x(stream_id, off, type, data, meta, is_push)
            join s on s.id = x.stream_id
        ), i1 as (
            insert into events (seq, stream_id, version, type, data, metadata, "timestamp")
            select seq, stream_id, version, type, data, meta, $5 from e where not is_push
        ), i2 as (
            insert into push_events (seq, stream_id, version, type, data, metadata, "timestamp")
            select seq, stream_id, version, type, data, meta, $5 from e where is_push
        )
        select seq, version from e
        """;

    private static async Task<double> RateAsync(NpgsqlDataSource dataSource, int seconds, Func<int, NpgsqlCommand> make)
    {
        long count = 0;
        long n = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var sw = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, 8).Select(async _ =>
        {
            await using var connection = await dataSource.OpenConnectionAsync();
            while (!stop.IsCancellationRequested)
            {
                await using var cmd = make((int)Interlocked.Increment(ref n));
                cmd.Connection = connection;
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
