using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Purge.DeletingInvalidTokens;
using Monal.Push.Purge.KeepingLogFiles;
using Monal.Push.Purge.Scheduling;
using Npgsql;

namespace Monal.Push.Purge.Auditing;

/// <summary>
/// `monal-push audit retention`: proves (or disproves) that nothing is held longer or in more detail than the
/// policy allows. Render the report with <see cref="RetentionReportRenderer"/>; exit non-zero unless
/// <see cref="RetentionReport.Compliant"/>.
/// </summary>
public sealed class RetentionAuditor(
    NpgsqlDataSource dataSource,
    InvalidTokenSweeper invalidTokens,
    IOptions<RetentionOptions> options,
    IOptions<DataOptions> data,
    TimeProvider clock,
    ILogger<RetentionAuditor> logger)
{
    /// <summary>How far back the schedule check reads RetentionRun events.</summary>
    public static readonly TimeSpan RunWindow = TimeSpan.FromDays(30);

    /// <summary>Builds the report at the clock's now.</summary>
    public async Task<RetentionReport> AuditAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var o = options.Value;
        var violations = new List<AuditViolation>();

        // Push logs (personal data: a device UUID or a domain, with the time of each push) are limited to
        // Retention:PushLog plus one purge interval; a queued push is a push log too, and leaves the queue with its
        // final outcome long before that. Registrations are kept while in use; the per-day domain counters hold no
        // personal data.
        var inventory = new List<InventoryItem>
        {
            await ItemAsync("push_events", "Push events (each push and its outcome) in the ledger",
                "select count(*), min(\"timestamp\") from push_events", now, o.PushLog, o.PurgeInterval, ct),
            await ItemAsync(ReadModelTables.PushLog, "Push-log rows (read model)",
                "select count(*), min(requested_at) from push_log", now, o.PushLog, o.PurgeInterval, ct),
            await ItemAsync(ReadModelTables.DomainUsagePushes, "Each push's domain and counted outcome (domain usage read model)",
                "select count(*), min(requested_at) from domain_usage_pushes", now, o.PushLog, o.PurgeInterval, ct),
            await ItemAsync(ReadModelTables.PushQueue, "Pushes queued for delivery",
                "select count(*), min(requested_at) from push_queue", now, o.PushLog, o.PurgeInterval, ct),
            await ItemAsync(ReadModelTables.Devices, "Registered devices (kept while in use)",
                "select count(*), min(registered_at) from devices", now, null, null, ct),
            await ItemAsync(ReadModelTables.DomainUsage, "Pushes per day and XMPP domain (counters, no personal data)",
                "select count(*), min(day)::timestamp at time zone 'UTC' from domain_usage", now, null, null, ct),
        };

        var awaiting = await invalidTokens.CandidatesAsync(now, ct);
        inventory.Add(Item("invalidated_devices", "Devices whose registration ended (token invalid or rejected, or unregistered), awaiting erasure",
            awaiting.Count, awaiting.Count == 0 ? null : awaiting.Min(a => a.EndedAt), now, o.InvalidTokenInterval,
            o.InvalidTokenInterval));

        var logFolder = LogFileNames.Folder(data.Value.Path);
        var logDays = Directory.Exists(logFolder)
            ? Directory.GetFiles(logFolder, LogFileNames.Pattern)
                .Select(f => LogFileNames.TryParseDay(f, out var d) ? d : (DateOnly?)null)
                .Where(d => d is not null).Select(d => d!.Value).ToList()
            : [];
        inventory.Add(Item("log_files", "Server log files (one per UTC day)", logDays.Count,
            logDays.Count == 0 ? null : LogFileNames.StartOf(logDays.Min()), now, o.LogFiles, o.PurgeInterval));

        inventory.Add(await ItemAsync("retention_runs", "Evidence of retention runs (no personal data)",
            $"select count(*), min(\"timestamp\") from events where stream_id = '{SystemStreams.Retention}' and type = 'retention_run.v1'",
            now, null, null, ct));

        foreach (var item in inventory.Where(i => !i.Compliant))
        {
            violations.Add(new AuditViolation(item.Category, "retention limit", item.Category,
                $"the oldest item is {Describe(item.OldestAge)} old; the limit is {Describe(item.Limit)} (plus {Describe(item.Grace)} between runs)"));
        }

        await PushEventTablesAsync(now, o, violations, ct);
        var jobs = await JobsAsync(now, o, violations, ct);
        var rows = await PersonalDataScanner.ScanDatabaseAsync(dataSource, violations, ct);
        var (files, lines) = await PersonalDataScanner.ScanLogFilesAsync(data.Value.Path, violations, ct);

        Log.AuditFinished(logger, violations.Count);
        return new RetentionReport(now, violations.Count == 0, inventory, jobs, new ScanSummary(rows, files, lines), violations);
    }

    private async Task<List<JobSchedule>> JobsAsync(DateTimeOffset now, RetentionOptions o, List<AuditViolation> violations, CancellationToken ct)
    {
        var windowStart = now - RunWindow;
        DateTimeOffset since;
        await using (var installed = dataSource.CreateCommand("select min(created_at) from streams"))
        {
            since = await installed.ExecuteScalarAsync(ct) is DateTime first
                ? new DateTimeOffset(DateTime.SpecifyKind(first, DateTimeKind.Utc))
                : now;
        }

        if (since < windowStart)
        {
            since = windowStart;
        }

        var runs = new List<RetentionRun>();
        await using (var cmd = dataSource.CreateCommand("""
            select data::text from events
            where stream_id = $1 and type = 'retention_run.v1' and "timestamp" >= $2 order by seq
            """))
        {
            cmd.Parameters.Add(new() { Value = SystemStreams.Retention });
            cmd.Parameters.Add(new() { Value = windowStart });
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                if (JsonSerializer.Deserialize(reader.GetString(0), LedgerJson.Default.RetentionRun) is { } run)
                {
                    runs.Add(run);
                }
            }
        }

        var result = new List<JobSchedule>();
        foreach (var job in RetentionJobNames.All)
        {
            var interval = job == RetentionJobNames.InvalidTokens ? o.InvalidTokenInterval : o.PurgeInterval;
            var mine = runs.Where(r => r.Job == job && !r.DryRun).ToList();
            var ok = mine.Where(r => r.Outcome == RetentionJobs.Succeeded).Select(r => r.StartedAt).Order().ToList();
            var points = new List<DateTimeOffset> { since };
            points.AddRange(ok.Where(t => t >= since));
            points.Add(now);
            var longest = points.Zip(points.Skip(1), (a, b) => b - a).DefaultIfEmpty(TimeSpan.Zero).Max();
            var onSchedule = longest <= 2 * interval;
            result.Add(new JobSchedule(job, interval, ok.Count, mine.Count(r => r.Outcome != RetentionJobs.Succeeded),
                ok.Count == 0 ? null : ok[^1], longest, onSchedule));
            if (!onSchedule)
            {
                violations.Add(new AuditViolation(job, "ran on schedule", $"RetentionRun events of {job} since {since:yyyy-MM-dd HH:mm} UTC",
                    $"the longest gap without a successful run is {Describe(longest)}; at most {Describe(2 * interval)} (twice the interval) is allowed"));
            }
        }

        return result;
    }

    // The push purge removes a day by detaching its partition and dropping it; a killed run can leave the partition
    // "detach pending" or a detached table, which queries on push_events (and the inventory above) no longer see.
    // And the purge's evidence counts dropped events from push_event_days: they must match the stored events.
    private async Task PushEventTablesAsync(DateTimeOffset now, RetentionOptions o, List<AuditViolation> violations, CancellationToken ct)
    {
        foreach (var table in await PushDayTable.ReadAsync(dataSource, ct))
        {
            if (table.State != PushDayState.Attached && now - table.Upper > o.PushLog + o.PurgeInterval)
            {
                violations.Add(new AuditViolation("push_events", "retention limit", table.Name,
                    $"{(table.State == PushDayState.DetachPending ? "a partition left detach-pending" : "a table detached")} by an interrupted purge still holds the push events of {table.Day:yyyy-MM-dd}; the next push-logs run drops it"));
            }
        }

        await using var counts = dataSource.CreateCommand("""
            select count(*) from (
                select ("timestamp" at time zone 'UTC')::date as day, count(*) as n from push_events group by 1) r
            full join (select day, sum(events) as n from push_event_days group by 1) c using (day)
            where coalesce(r.n, 0) <> coalesce(c.n, 0)
            """);
        var off = (long)(await counts.ExecuteScalarAsync(ct))!;
        if (off > 0)
        {
            violations.Add(new AuditViolation("push_event_days", "exact purge evidence", "push_event_days",
                $"on {off} day(s) the per-day counts that RetentionRun reports for dropped partitions differ from the push events stored; something wrote push_events around EventStore"));
        }
    }

    private async Task<InventoryItem> ItemAsync(
        string category, string description, string sql, DateTimeOffset now, TimeSpan? limit, TimeSpan? grace, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(sql);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        var count = reader.GetInt64(0);
        DateTimeOffset? oldest = reader.IsDBNull(1) ? null : reader.GetFieldValue<DateTimeOffset>(1);
        return Item(category, description, count, oldest, now, limit, grace);
    }

    private static InventoryItem Item(
        string category, string description, long count, DateTimeOffset? oldest, DateTimeOffset now, TimeSpan? limit, TimeSpan? grace)
    {
        TimeSpan? age = oldest is null ? null : (now - oldest.Value) < TimeSpan.Zero ? TimeSpan.Zero : now - oldest.Value;
        var compliant = limit is null || age is null || age <= limit + (grace ?? TimeSpan.Zero);
        return new InventoryItem(category, description, count, oldest, age, limit, grace, compliant);
    }

    /// <summary>"14 d 2 h", "35 min", "—".</summary>
    public static string Describe(TimeSpan? span)
    {
        if (span is not { } s)
        {
            return "—";
        }

        if (s.TotalDays >= 1)
        {
            return s.Hours == 0 ? $"{(int)s.TotalDays} d" : $"{(int)s.TotalDays} d {s.Hours} h";
        }

        if (s.TotalHours >= 1)
        {
            return s.Minutes == 0 ? $"{(int)s.TotalHours} h" : $"{(int)s.TotalHours} h {s.Minutes} min";
        }

        return s.TotalMinutes >= 1 ? $"{(int)s.TotalMinutes} min" : $"{(int)s.TotalSeconds} s";
    }
}
