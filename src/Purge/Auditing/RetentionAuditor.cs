using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Purge.DeletingInvalidTokens;
using Monal.Push.Purge.KeepingLogFiles;
using Monal.Push.Purge.Scheduling;
using Monal.Push.Purge.Erasing;
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

    /// <summary>
    /// How long an unregistered or rejected device may keep its token and data key after its end: the hourly
    /// device job erases it, so one hour plus that job's interval (between runs).
    /// </summary>
    public static readonly TimeSpan EndedDeviceLimit = TimeSpan.FromHours(1);

    /// <summary>
    /// How long a data key may exist without a stream (a registration whose append failed): the hourly device job
    /// deletes it once it is this old, so this plus that job's interval.
    /// </summary>
    public static readonly TimeSpan OrphanedKeyLimit = InvalidTokenSweeper.OrphanedKeyAge;

    // Categories whose violations name each table themselves (PushEventTablesAsync) rather than the inventory line.
    private const string DetachedDayTables = "push_event_tables_detached";

    // A device still holds personal data while its row keeps the encrypted token or its data key exists.
    private const string HoldsData =
        "(d.encrypted_token is not null or exists (select 1 from data_keys k where k.device_id = d.device_id))";

    /// <summary>Builds the report at the clock's now.</summary>
    public async Task<RetentionReport> AuditAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var o = options.Value;
        var violations = new List<AuditViolation>();

        // Every place personal data lives, each with its limit. Push logs (a device UUID or a domain, with the time
        // of each push and its outcome) are limited to Retention:PushLog plus one purge interval; a queued push is a
        // push log too. The per-day domain counters name no device, but on a one-user domain they count one
        // person's messages, so they share the push log's window. Active registrations are kept while in use; a
        // device that ended (unregistered, rejected, invalidated) is erased by the hourly device job.
        var pushEvents = string.Join(", ", EventTypes.PushEventNames.Where(n => n != "push_requested.v1").Select(n => $"'{n}'"));
        var inventory = new List<InventoryItem>
        {
            await ItemAsync("push_events", "Push requests in the ledger (each push, its device and domain)",
                "select count(*), min(\"timestamp\") from push_events where type = 'push_requested.v1'", now, o.PushLog, o.PurgeInterval, ct),
            await ItemAsync("push_outcome_events", "Push outcomes in the ledger (delivered, failed, with Apple's status)",
                $"select count(*), min(\"timestamp\") from push_events where type in ({pushEvents})", now, o.PushLog, o.PurgeInterval, ct),
            await ItemAsync(ReadModelTables.PushLog, "Push-log rows (read model)",
                "select count(*), min(requested_at) from push_log", now, o.PushLog, o.PurgeInterval, ct),
            await ItemAsync(ReadModelTables.DomainUsage, "Pushes per UTC day and XMPP domain (on a one-user domain, one person's count)",
                "select count(*), min(day)::timestamp at time zone 'UTC' from domain_usage", now, o.PushLog, o.PurgeInterval, ct),
            await ItemAsync(ReadModelTables.PushQueue, "Pushes queued for delivery",
                "select count(*), min(requested_at) from push_queue", now, o.PushLog, o.PurgeInterval, ct),
            await ItemAsync("devices_active", "Active devices (token, device UUID, secret, times, domains; kept while in use)",
                "select count(*), min(registered_at) from devices where unregistered_at is null and rejected_at is null and invalidated_at is null",
                now, null, null, ct),
            await ItemAsync("devices_unregistered", "Unregistered devices still holding a token or data key, awaiting erasure",
                $"select count(*), min(unregistered_at) from devices d where unregistered_at is not null and {HoldsData}",
                now, EndedDeviceLimit, o.InvalidTokenInterval, ct),
            await ItemAsync("devices_rejected", "Devices whose token Apple rejected, still holding a token or data key, awaiting erasure",
                $"select count(*), min(rejected_at) from devices d where rejected_at is not null and unregistered_at is null and {HoldsData}",
                now, EndedDeviceLimit, o.InvalidTokenInterval, ct),
            await ItemAsync("device_outcome_events", "Apple's verdicts on a token (invalid, rejected) in device streams, erased with the device",
                "select count(*), min(\"timestamp\") from events where type in ('token_invalidated.v1', 'token_rejected.v1')",
                now, null, null, ct),
            await ItemAsync("orphaned_data_keys", "Data keys without a stream (a registration whose append failed), deleted by the hourly device job",
                "select count(*), min(created_at) from data_keys k where not exists (select 1 from streams s where s.id = k.device_id)",
                now, OrphanedKeyLimit, o.InvalidTokenInterval, ct),
        };

        // Unregistered and rejected devices have their own items above; this one is the tokens Apple invalidated.
        var awaiting = (await invalidTokens.CandidatesAsync(now, ct)).Where(a => a.Cause == DeviceEraser.CauseInvalidToken).ToList();
        inventory.Add(Item("invalidated_devices", "Devices whose token Apple declared invalid, awaiting erasure",
            awaiting.Count, awaiting.Count == 0 ? null : awaiting.Min(a => a.EndedAt), now, o.InvalidTokenInterval,
            o.InvalidTokenInterval));

        if (await ReadModelTables.ExistsAsync(dataSource, ReadModelTables.DeadTokens, ct))
        {
            inventory.Add(await ItemAsync(ReadModelTables.DeadTokens, "Keyed ids of devices whose token Apple rejected (kept for the push-log period)",
                "select count(*), min(dead_at) from dead_tokens", now, o.PushLog, o.PurgeInterval, ct));
        }

        if (await ReadModelTables.ExistsAsync(dataSource, ReadModelTables.NewDeviceQuota, ct))
        {
            // A sender's row (an XMPP domain, or a keyed hash of an HTTP client's network) lives while its bucket refills
            // (at most 14 days, refused at start otherwise) and is swept within minutes once full: a row full for longer
            // than an hour is kept past its use (a bucket not yet full counts as age 0).
            inventory.Add(await ItemAsync(ReadModelTables.NewDeviceQuota,
                "New-device quota buckets per sender (XMPP domain, or keyed hash of an HTTP client's network), deleted once full",
                "select count(*), min(full_at) from new_device_quota", now, TimeSpan.Zero,
                TimeSpan.FromHours(1), ct));
        }

        var dayTables = await PushDayTable.ReadAsync(dataSource, ct);
        var detached = dayTables.Where(t => t.State != PushDayState.Attached).ToList();
        inventory.Add(Item(DetachedDayTables, "Push-event day tables an interrupted purge detached but did not drop",
            detached.Count, detached.Count == 0 ? null : detached.Min(t => t.Lower), now, o.PushLog, o.PurgeInterval));

        var path = data.Value.Path;
        inventory.Add(LogFilesItem("log_files", "Server log files (one per UTC day)",
            LogFileNames.Dated(LogFileNames.Folder(path), LogFileNames.Pattern), now, o));
        var embeddedLogs = LogFileNames.Dated(LogFileNames.EmbeddedFolder(path), LogFileNames.EmbeddedPattern);
        var startupLog = LogFileNames.EmbeddedStartupLogSince(path);
        var embeddedOldest = embeddedLogs.Count == 0 ? startupLog : LogFileNames.StartOf(embeddedLogs[0].Day);
        if (startupLog < embeddedOldest)
        {
            embeddedOldest = startupLog;
        }

        inventory.Add(Item("embedded_postgres_log_files", "The embedded PostgreSQL's log files (one per UTC day, and its startup log)",
            embeddedLogs.Count + (startupLog is null ? 0 : 1), embeddedOldest, now, o.LogFiles, o.PurgeInterval));

        inventory.Add(await ItemAsync("retention_runs", "Evidence of retention runs (no personal data)",
            $"select count(*), min(\"timestamp\") from events where stream_id = '{SystemStreams.Retention}' and type = 'retention_run.v1'",
            now, null, null, ct));

        foreach (var item in inventory.Where(i => !i.Compliant && i.Category != DetachedDayTables))
        {
            violations.Add(new AuditViolation(item.Category, "retention limit", item.Category,
                $"the oldest item is {Describe(item.OldestAge)} old; the limit is {Describe(item.Limit)} (plus {Describe(item.Grace)} between runs)"));
        }

        await PushEventTablesAsync(dayTables, now, o, violations, ct);
        var jobs = await JobsAsync(now, o, violations, ct);
        var rows = await PersonalDataScanner.ScanDatabaseAsync(dataSource, detached.Select(t => t.Name), violations, ct);
        var (files, lines) = await PersonalDataScanner.ScanLogFilesAsync(path, violations, ct);

        Log.AuditFinished(logger, violations.Count);
        return new RetentionReport(now, violations.Count == 0, inventory, jobs, new ScanSummary(rows, files, lines), violations);
    }

    private static InventoryItem LogFilesItem(
        string category, string description, IReadOnlyList<(string File, DateOnly Day)> files, DateTimeOffset now, RetentionOptions o) =>
        Item(category, description, files.Count, files.Count == 0 ? null : LogFileNames.StartOf(files[0].Day), now, o.LogFiles, o.PurgeInterval);

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
    private async Task PushEventTablesAsync(
        IReadOnlyList<PushDayTable> tables, DateTimeOffset now, RetentionOptions o, List<AuditViolation> violations, CancellationToken ct)
    {
        foreach (var table in tables)
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
