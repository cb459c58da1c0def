using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Benchmarks.Support;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Npgsql;

namespace Monal.Push.Benchmarks.SideBySide;

/// <summary>
/// The push-log purge, Marten beside ours, on the cluster the append windows used: the same N <see cref="PushRequested"/>
/// events (10,000 device streams, half older than the 14-day cutoff spread over the 20 days before it, half younger)
/// are written into our <c>push_events</c> (by <see cref="LedgerFill"/>) and copied row for row into Marten's
/// <c>mt_events</c>/<c>mt_streams</c>. Marten has no API that removes events by age (<c>ArchiveStream</c>,
/// compaction and <c>DeleteAllEventDataAsync</c> work on whole streams or the whole store, and a device stream holds
/// pushes of every age), so its purge is the statement an operator would write:
/// <c>DELETE FROM mt_events WHERE timestamp &lt; cutoff</c>, then the <c>VACUUM</c> that gives the space back. Ours is
/// <see cref="EventStore.PurgePushEventsAsync"/>. Both removals run alone (no ingestion: the <c>purge</c> verb measures
/// ingestion during ours).
/// </summary>
internal static class MartenPurge
{
    private const int Devices = 10_000;

    public static async Task RunAsync(BenchDatabase db, long total)
    {
        var now = DateTimeOffset.UtcNow;
        var cutoff = now.AddDays(-14);
        var today = DateOnly.FromDateTime(now.UtcDateTime);
        var devices = Enumerable.Range(0, Devices).Select(_ => Guid.CreateVersion7()).ToArray();
        var half = total / 2;
        var fill = Stopwatch.StartNew();
        await using var store = new EventStore(db.DataSource, TimeProvider.System, [], [],
            Options.Create(new LedgerOptions()), NullLogger<EventStore>.Instance);
        await store.EnsurePushPartitionsAsync(today.AddDays(-35), today.AddDays(1));
        await ExecAsync(db.DataSource, "truncate push_events; delete from push_event_days; delete from streams; truncate marten.mt_events; delete from marten.mt_streams");
        await LedgerFill.InsertAsync(db.DataSource, total, i =>
        {
            var at = i < half
                ? cutoff.AddTicks(-(long)(TimeSpan.FromDays(20).Ticks * ((double)i / half)))
                : now.AddTicks(-(long)(TimeSpan.FromDays(14).Ticks * ((double)(i - half) / Math.Max(1, total - half)))).AddMinutes(-1);
            var device = devices[i % Devices];
            return new FillRow(device, 1 + (i / Devices), new PushRequested(Guid.CreateVersion7(), device, "example.org", at, at.AddDays(1)), at);
        });
        await LedgerFill.WriteStreamsAsync(db.DataSource);
        await ExecAsync(db.DataSource, """
            insert into push_event_days (day, backend, events)
            select ("timestamp" at time zone 'UTC')::date, 0, count(*) from push_events group by 1
            """);
        // The same rows for Marten, as its quick append writes them (stored type name, .NET type, default tenant).
        await ExecAsync(db.DataSource, """
            insert into marten.mt_streams (id, type, version, "timestamp", created, tenant_id, is_archived)
            select stream_id, null, max(version), max("timestamp"), min("timestamp"), '*DEFAULT*', false from push_events group by stream_id
            """);
        await ExecAsync(db.DataSource, """
            insert into marten.mt_events (seq_id, id, stream_id, version, data, type, "timestamp", tenant_id, mt_dotnet_type, is_archived)
            select nextval('marten.mt_events_sequence'), gen_random_uuid(), stream_id, version, data, 'push_requested.v1', "timestamp",
                   '*DEFAULT*', 'Monal.Push.Ledger.Events.PushRequested, Monal.Push.Ledger', false
            from push_events order by seq
            """);
        await ExecAsync(db.DataSource, "vacuum analyze push_events, push_event_days, marten.mt_events, marten.mt_streams");
        await ExecAsync(db.DataSource, "checkpoint");
        var expired = await ScalarAsync(db.DataSource, "select count(*) from push_events where \"timestamp\" < $1", cutoff);
        var martenSize = await ScalarAsync(db.DataSource, "select pg_total_relation_size('marten.mt_events')", null);
        Console.WriteLine();
        Console.WriteLine($"# purge: {total:N0} events in each store ({expired:N0} older than the cutoff), filled in {fill.Elapsed.TotalSeconds:N0} s; mt_events {martenSize / 1048576.0:N0} MiB; load average {LoadAverage.Now()}");

        var sw = Stopwatch.StartNew();
        var ours = await store.PurgePushEventsAsync(cutoff, 10_000, dryRun: false);
        var oursSeconds = sw.Elapsed.TotalSeconds;
        var oursLeft = await ScalarAsync(db.DataSource, "select count(*) from push_events where \"timestamp\" < $1", cutoff);

        sw.Restart();
        long martenDeleted;
        await using (var delete = db.DataSource.CreateCommand("delete from marten.mt_events where \"timestamp\" < $1"))
        {
            delete.CommandTimeout = 0;
            delete.Parameters.Add(new() { Value = cutoff });
            martenDeleted = await delete.ExecuteNonQueryAsync();
        }

        var deleteSeconds = sw.Elapsed.TotalSeconds;
        sw.Restart();
        await ExecAsync(db.DataSource, "vacuum marten.mt_events");
        var vacuumSeconds = sw.Elapsed.TotalSeconds;
        var martenLeft = await ScalarAsync(db.DataSource, "select count(*) from marten.mt_events where \"timestamp\" < $1", cutoff);

        Console.WriteLine();
        Console.WriteLine("| purge of the expired half | events removed | left older than cutoff | seconds | + VACUUM s | total s | vs ours |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        Console.WriteLine($"| ours: PurgePushEventsAsync ({ours.PartitionsDropped} day partitions detached and dropped, boundary day batched) | {ours.EventsDeleted:N0} | {oursLeft:N0} | {oursSeconds:N2} | – | {oursSeconds:N2} | 1.0x |");
        Console.WriteLine($"| Marten 9: DELETE FROM mt_events WHERE timestamp < cutoff | {martenDeleted:N0} | {martenLeft:N0} | {deleteSeconds:N2} | {vacuumSeconds:N2} | {deleteSeconds + vacuumSeconds:N2} | {(deleteSeconds + vacuumSeconds) / oursSeconds:N1}x |");
        if (ours.EventsDeleted != expired || martenDeleted != expired || oursLeft != 0 || martenLeft != 0)
        {
            throw new InvalidOperationException($"purge mismatch: expected {expired}, ours {ours.EventsDeleted} (left {oursLeft}), Marten {martenDeleted} (left {martenLeft})");
        }
    }

    private static async Task ExecAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var cmd = dataSource.CreateCommand(sql);
        cmd.CommandTimeout = 0;
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<long> ScalarAsync(NpgsqlDataSource dataSource, string sql, object? parameter)
    {
        await using var cmd = dataSource.CreateCommand(sql);
        cmd.CommandTimeout = 0;
        if (parameter is not null)
        {
            cmd.Parameters.Add(new() { Value = parameter });
        }

        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
