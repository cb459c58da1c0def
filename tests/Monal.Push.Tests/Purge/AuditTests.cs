using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Purge.Auditing;
using Monal.Push.Purge.KeepingLogFiles;
using Monal.Push.Purge.Scheduling;

namespace Monal.Push.Tests.Purge;

[Trait("Category", "Postgres")]
public sealed class AuditTests
{
    /// <summary>A ledger in use for a day, with every job run hourly: nothing to complain about.</summary>
    private static async Task<PurgeHost> CleanAsync()
    {
        var host = await PurgeHost.CreateAsync();
        var device = await host.RegisterAsync(PurgeHost.NewToken());
        var jobs = host.Get<RetentionJobs>();
        for (var hour = 0; hour < 24; hour++)
        {
            await host.PushAsync(device);
            await jobs.RunAllAsync(dryRun: false, CancellationToken.None);
            host.Clock.Advance(TimeSpan.FromHours(1));
        }

        return host;
    }

    [Fact]
    public async Task AuditAsync_Should_BeCompliant_When_TheDatabaseAndLogsAreClean()
    {
        await using var host = await CleanAsync();

        var report = await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None);

        Assert.True(report.Compliant, RetentionReportRenderer.Text(report));
        Assert.Empty(report.Violations);
        Assert.All(report.Jobs, j => Assert.True(j.Runs >= 24 && j.OnSchedule, j.Job));
        Assert.Contains(report.Inventory, i => i.Category == "push_log" && i.Count == 24);
        Assert.True(report.Scan.DatabaseRowsScanned > 48);
        Assert.True(report.Scan.LogFilesScanned >= 1);
        Assert.Contains("COMPLIANT", RetentionReportRenderer.Text(report), StringComparison.Ordinal);
        var html = RetentionReportRenderer.Render(report, ReportFormat.Html);
        Assert.StartsWith("<!DOCTYPE html>", html, StringComparison.Ordinal);
        Assert.Contains("<svg", html, StringComparison.Ordinal);
        Assert.Contains("\"compliant\": true", RetentionReportRenderer.Render(report, ReportFormat.Json), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AuditAsync_Should_NamePushLog_When_AnExpiredPushLogRowIsPlanted()
    {
        await using var host = await CleanAsync();
        await using (var cmd = host.DataSource.CreateCommand(
            """
            insert into push_log (push_id, device_id, domain, requested_at, expires_at, outcome)
            values ($1, $2, 'example.org', $3, $3 + interval '1 day', 'delivered')
            """))
        {
            cmd.Parameters.Add(new() { Value = Guid.CreateVersion7() });
            cmd.Parameters.Add(new() { Value = Guid.CreateVersion7() });
            cmd.Parameters.Add(new() { Value = host.Clock.GetUtcNow().AddDays(-20) });
            await cmd.ExecuteNonQueryAsync();
        }

        var report = await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None);

        Assert.False(report.Compliant);
        var v = Assert.Single(report.Violations);
        Assert.Equal("push_log", v.Category);
        Assert.Equal("retention limit", v.Rule);
        Assert.Contains("20 d", v.Detail, StringComparison.Ordinal);
        Assert.Contains("Not compliant", RetentionReportRenderer.Html(report), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AuditAsync_Should_NamePushEventDays_When_APushEventBypassedTheCounts()
    {
        await using var host = await CleanAsync();
        await using (var cmd = host.DataSource.CreateCommand("""
            insert into push_events (stream_id, version, type, data, "timestamp") values ($1, 1, 'push_requested.v1', '{}', $2)
            """))
        {
            cmd.Parameters.Add(new() { Value = Guid.CreateVersion7() });
            cmd.Parameters.Add(new() { Value = host.Clock.GetUtcNow() });
            await cmd.ExecuteNonQueryAsync();
        }

        var report = await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None);

        var v = Assert.Single(report.Violations);
        Assert.Equal("push_event_days", v.Category);
        Assert.Equal("exact purge evidence", v.Rule);
        Assert.Contains("1 day(s)", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AuditAsync_Should_NameADetachedDayTable_When_AnInterruptedPurgeLeftOne()
    {
        await using var host = await CleanAsync();
        await using (var cmd = host.DataSource.CreateCommand("create table push_events_20261001 (like push_events)"))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        var report = await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None);

        Assert.False(report.Compliant);
        var v = Assert.Single(report.Violations);
        Assert.Equal("push_events", v.Category);
        Assert.Equal("push_events_20261001", v.Location);
        Assert.Contains("2026-10-01", v.Detail, StringComparison.Ordinal);

        var run = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.PushLogs, dryRun: false, CancellationToken.None);

        Assert.Equal(1, run.Deleted["push_event_partitions"]);
        Assert.True((await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None)).Compliant);
    }

    [Fact]
    public async Task AuditAsync_Should_NameThePushQueue_When_AQueuedPushOutlivesThePushLogWindow()
    {
        await using var host = await CleanAsync();
        await using (var cmd = host.DataSource.CreateCommand("""
            insert into push_queue (push_id, device_id, requested_at, not_before, expires_at, next_attempt_at)
            values ($1, $2, $3, $3, $3 + interval '1 day', $3)
            """))
        {
            cmd.Parameters.Add(new() { Value = Guid.CreateVersion7() });
            cmd.Parameters.Add(new() { Value = Guid.CreateVersion7() });
            cmd.Parameters.Add(new() { Value = host.Clock.GetUtcNow().AddDays(-16) });
            await cmd.ExecuteNonQueryAsync();
        }

        var report = await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None);

        var v = Assert.Single(report.Violations);
        Assert.Equal("push_queue", v.Category);
        Assert.Equal("retention limit", v.Rule);
        Assert.Contains(report.Inventory, i => i.Category == "push_log" && i.Count == 24 && i.Compliant);
        Assert.DoesNotContain(report.Inventory, i => i.Category == "domain_usage_pushes");
        Assert.Contains(report.Inventory, i => i.Category == "domain_usage" && i.Count == 2 && i.Limit == TimeSpan.FromDays(14) && i.Compliant);
    }

    [Fact]
    public async Task AuditAsync_Should_NameTheFileAndLine_When_AJidIsPlantedInALogFile()
    {
        await using var host = await CleanAsync();
        var file = Path.Combine(LogFileNames.Folder(host.DataPath), LogFileNames.FileName(DateOnly.FromDateTime(host.Clock.GetUtcNow().UtcDateTime)));
        await File.AppendAllTextAsync(file, "2026-11-02T12:00:00.000Z level=Information category=X event=1 msg=\"push for juliet@capulet.example\"\n");
        // The host keeps logging into the same file: find the planted line rather than counting lines.
        var line = Array.FindIndex(File.ReadAllLines(file), l => l.Contains("juliet@capulet.example", StringComparison.Ordinal)) + 1;

        var report = await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None);

        Assert.False(report.Compliant, RetentionReportRenderer.Text(report) + string.Join("\n", Directory.GetFiles(Path.GetDirectoryName(file)!)));
        var v = Assert.Single(report.Violations);
        Assert.Equal("log files", v.Category);
        Assert.Equal("no user JIDs", v.Rule);
        Assert.Equal($"logs/{Path.GetFileName(file)} line {line}", v.Location);
        Assert.DoesNotContain("juliet", RetentionReportRenderer.Text(report), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AuditAsync_Should_NameTheEvent_When_AClearTokenIsPlantedInTheDatabase()
    {
        await using var host = await CleanAsync();
        var token = PurgeHost.NewToken();
        var device = Guid.CreateVersion7();
        var append = await host.Store.AppendAsync(device, "device", ExpectedVersion.Any,
            [new DeviceRegistered(device, DeviceMode.Stateless, PurgeHost.Module, token, null, "example.org", host.Clock.GetUtcNow())]);

        var report = await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None);

        Assert.False(report.Compliant);
        Assert.Contains(report.Violations, v => v.Category == "events" && v.Rule == "no tokens in clear"
            && v.Location == $"events: seq {append.LastSequence} (device_registered.v1)");
        Assert.Contains(report.Violations, v => v.Category == "devices" && v.Rule == "no tokens in clear");
        var rendered = RetentionReportRenderer.Text(report) + RetentionReportRenderer.Json(report) + RetentionReportRenderer.Html(report);
        Assert.DoesNotContain(token, rendered, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AuditAsync_Should_ReportALateJob_When_NoRunHappenedForMoreThanTwoIntervals()
    {
        await using var host = await CleanAsync();
        for (var hour = 0; hour < 3; hour++)
        {
            await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.PushLogs, dryRun: false, CancellationToken.None);
            await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.LogFiles, dryRun: false, CancellationToken.None);
            host.Clock.Advance(TimeSpan.FromHours(1));
        }

        var report = await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None);

        var v = Assert.Single(report.Violations);
        Assert.Equal(RetentionJobNames.InvalidTokens, v.Category);
        Assert.Equal("ran on schedule", v.Rule);
        Assert.False(report.Jobs.Single(j => j.Job == RetentionJobNames.InvalidTokens).OnSchedule);
    }

    // ---- one planted violation each: the audit is not compliant (`audit retention` exits 1) and names the cause ----

    private static async Task<AuditViolation> SingleViolationAsync(PurgeHost host)
    {
        var report = await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None);
        Assert.False(report.Compliant, RetentionReportRenderer.Text(report));
        return Assert.Single(report.Violations);
    }

    private static async Task AssertRetentionViolationAsync(PurgeHost host, string category, string detail)
    {
        var v = await SingleViolationAsync(host);
        Assert.Equal((category, "retention limit"), (v.Category, v.Rule));
        Assert.Contains(detail, v.Detail, StringComparison.Ordinal);
    }

    private static async Task ExecuteAsync(PurgeHost host, string sql, params object[] args)
    {
        await using var cmd = host.DataSource.CreateCommand(sql);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>A registered device whose registration is <paramref name="age"/> old, then one event that ends it.</summary>
    private static async Task<Guid> EndedDeviceAsync(PurgeHost host, TimeSpan age, Func<Guid, DateTimeOffset, object> end)
    {
        var device = Guid.CreateVersion7();
        var at = host.Clock.GetUtcNow() - age;
        await host.Store.AppendAsync(device, "device", ExpectedVersion.Any,
        [
            new DeviceRegistered(device, DeviceMode.Registered, PurgeHost.Module, await host.Keys.EncryptAsync(device, PurgeHost.NewToken()),
                host.Hash.HashSecret("s3cret"), "example.org", at.AddMinutes(-5)),
        ]);
        await host.Store.AppendAsync(device, "device", ExpectedVersion.Any, [end(device, at)]);
        return device;
    }

    [Fact]
    public async Task AuditAsync_Should_NameDomainUsage_When_ACounterOutlivesThePushLogWindow()
    {
        await using var host = await CleanAsync();
        await ExecuteAsync(host, "insert into domain_usage (day, domain, pushes, delivered) values ($1, 'solo.example', 3, 3)",
            DateOnly.FromDateTime(host.Clock.GetUtcNow().UtcDateTime).AddDays(-16));

        await AssertRetentionViolationAsync(host, "domain_usage", "the limit is 14 d");
    }

    [Fact]
    public async Task AuditAsync_Should_NameUnregisteredDevices_When_OneStillHoldsItsTokenAfterAnHourAndAJobInterval()
    {
        await using var host = await CleanAsync();
        await EndedDeviceAsync(host, TimeSpan.FromMinutes(90), (d, at) => new DeviceUnregistered(d, at));   // within 1 h + 1 h
        Assert.True((await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None)).Compliant);
        await EndedDeviceAsync(host, TimeSpan.FromHours(3), (d, at) => new DeviceUnregistered(d, at));

        await AssertRetentionViolationAsync(host, "devices_unregistered", "3 h old; the limit is 1 h (plus 1 h between runs)");
    }

    [Fact]
    public async Task AuditAsync_Should_NameRejectedDevices_When_OneStillHoldsItsDataKeyAfterAnHourAndAJobInterval()
    {
        await using var host = await CleanAsync();
        await EndedDeviceAsync(host, TimeSpan.FromHours(5), (d, at) => new TokenRejected(Guid.CreateVersion7(), d, "BadDeviceToken", at));

        await AssertRetentionViolationAsync(host, "devices_rejected", "5 h old");
    }

    [Fact]
    public async Task AuditAsync_Should_NameInvalidatedDevices_When_TheInvalidTokenJobLeftOneBehind()
    {
        await using var host = await CleanAsync();
        await EndedDeviceAsync(host, TimeSpan.FromHours(4),
            (d, at) => new TokenInvalidated(Guid.CreateVersion7(), d, "Unregistered", at.AddMinutes(-1), at));

        await AssertRetentionViolationAsync(host, "invalidated_devices", "4 h old");
    }

    [Fact]
    public async Task AuditAsync_Should_NameDeadTokens_When_ARowOutlivesThePushLogWindow()
    {
        await using var host = await CleanAsync();
        // The table of rejected tokens' keyed device ids comes with its own migration; the audit reads it when present.
        await ExecuteAsync(host, """
            create table if not exists dead_tokens (
                device_id uuid primary key, apple_timestamp timestamptz, dead_at timestamptz not null, reason text)
            """);
        await ExecuteAsync(host, "insert into dead_tokens (device_id, dead_at, reason) values ($1, $2, 'BadDeviceToken')",
            Guid.CreateVersion7(), host.Clock.GetUtcNow().AddDays(-3));
        var report = await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None);
        Assert.True(report.Compliant, RetentionReportRenderer.Text(report));
        Assert.Contains(report.Inventory, i => i.Category == "dead_tokens" && i.Count == 1);
        await ExecuteAsync(host, "insert into dead_tokens (device_id, dead_at, reason) values ($1, $2, 'Unregistered')",
            Guid.CreateVersion7(), host.Clock.GetUtcNow().AddDays(-15));

        await AssertRetentionViolationAsync(host, "dead_tokens", "15 d old");
    }

    [Fact]
    public async Task AuditAsync_Should_NamePushOutcomeEvents_When_AnOutcomeOutlivesThePushLogWindow()
    {
        await using var host = await CleanAsync();
        var at = host.Clock.GetUtcNow().AddDays(-20);
        var day = DateOnly.FromDateTime(at.UtcDateTime);
        await host.Store.EnsurePushPartitionsAsync(day, day.AddDays(1));
        await ExecuteAsync(host, """
            insert into push_events (stream_id, version, type, data, "timestamp") values ($1, 1, 'push_delivered.v1', '{}', $2)
            """, Guid.CreateVersion7(), at);
        await ExecuteAsync(host, "insert into push_event_days (day, backend, events) values ($1, 0, 1)", day);

        await AssertRetentionViolationAsync(host, "push_outcome_events", "20 d old");
    }

    [Fact]
    public async Task AuditAsync_Should_NameOrphanedDataKeys_When_AKeyWithoutAStreamIsOlderThanAnHourAndAnInterval()
    {
        await using var host = await CleanAsync();
        await ExecuteAsync(host, "insert into data_keys (device_id, wrapped_key, created_at) values ($1, $2, $3)",
            Guid.CreateVersion7(), new byte[60], host.Clock.GetUtcNow().AddHours(-3));

        await AssertRetentionViolationAsync(host, "orphaned_data_keys", "3 h old");
    }

    [Fact]
    public async Task AuditAsync_Should_NameNewDeviceQuotaRows_When_ABucketStayedFullForHours()
    {
        await using var host = await CleanAsync();
        await ExecuteAsync(host, "insert into new_device_quota (subject, tokens, updated_at, full_at) values ('http:0123456789', 100, $1, $1)",
            host.Clock.GetUtcNow().AddHours(-3));

        await AssertRetentionViolationAsync(host, "new_device_quota", "3 h old");
    }

    [Fact]
    public async Task AuditAsync_Should_NameTheEmbeddedClustersLog_When_ItsFileOutlivesTheWindow()
    {
        await using var host = await CleanAsync();
        var folder = LogFileNames.EmbeddedFolder(host.DataPath);
        Directory.CreateDirectory(folder);
        var today = DateOnly.FromDateTime(host.Clock.GetUtcNow().UtcDateTime);
        await File.WriteAllTextAsync(Path.Combine(folder, LogFileNames.EmbeddedFileName(today)), "2026-11-02 11:00:00.000 UTC [42] LOG:  checkpoint starting: time\n");
        await File.WriteAllTextAsync(Path.Combine(folder, LogFileNames.EmbeddedFileName(today.AddDays(-15))), "2026-10-18 11:00:00.000 UTC [42] LOG:  database system is ready\n");

        await AssertRetentionViolationAsync(host, "embedded_postgres_log_files", "the limit is 14 d");

        var run = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.LogFiles, dryRun: false, CancellationToken.None);
        Assert.True(run.Deleted["log_files"] >= 1);
        Assert.Equal([LogFileNames.EmbeddedFileName(today)], Directory.GetFiles(folder).Select(Path.GetFileName));
    }

    [Fact]
    public async Task AuditAsync_Should_NameTheEmbeddedClustersLog_When_ItsStartupLogOutlivesTheWindow()
    {
        await using var host = await CleanAsync();
        var startup = LogFileNames.EmbeddedStartupLog(host.DataPath);
        Directory.CreateDirectory(Path.GetDirectoryName(startup)!);
        await File.WriteAllTextAsync(startup, "2026-10-18 11:00:00.000 UTC [42] LOG:  redirecting log output to logging collector process\n");
        File.SetLastWriteTimeUtc(startup, host.Clock.GetUtcNow().AddDays(-15).UtcDateTime);

        await AssertRetentionViolationAsync(host, "embedded_postgres_log_files", "15 d");

        await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.LogFiles, dryRun: false, CancellationToken.None);
        Assert.False(File.Exists(startup));
    }

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(200)]
    public async Task AuditAsync_Should_NameTheEmbeddedClustersLogLine_When_ItHoldsATokenOfAnyAcceptedLength(int hexDigits)
    {
        await using var host = await CleanAsync();
        var token = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(hexDigits / 2));
        var folder = LogFileNames.EmbeddedFolder(host.DataPath);
        Directory.CreateDirectory(folder);
        var name = LogFileNames.EmbeddedFileName(DateOnly.FromDateTime(host.Clock.GetUtcNow().UtcDateTime));
        await File.WriteAllLinesAsync(Path.Combine(folder, name),
        [
            "2026-11-02 11:00:00.000 UTC [42] LOG:  checkpoint starting: time",
            // Not tokens: a UUID with dashes, a keyed hash, a ciphertext.
            $"2026-11-02 11:00:01.000 UTC [42] LOG:  {Guid.NewGuid()} h:0123456789 v1:{Convert.ToBase64String(new byte[90])}",
            $"2026-11-02 11:00:02.000 UTC [42] ERROR:  invalid input syntax for type uuid: \"{token}\"",
        ]);

        var v = await SingleViolationAsync(host);

        Assert.Equal("log files", v.Category);
        Assert.Equal("no tokens in clear", v.Rule);
        Assert.Equal($"postgres/log/{name} line 3", v.Location);
    }

    [Theory]
    [InlineData(32)]
    [InlineData(100)]
    [InlineData(200)]
    public async Task AuditAsync_Should_NameTheRow_When_AClearTokenOfAnyAcceptedLengthIsPlantedInARow(int hexDigits)
    {
        await using var host = await CleanAsync();
        var token = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(hexDigits / 2));
        var pushId = Guid.CreateVersion7();
        await ExecuteAsync(host, """
            insert into push_log (push_id, device_id, domain, requested_at, expires_at, outcome, reason)
            values ($1, $2, 'example.org', $3, $3 + interval '1 day', 'failed', $4)
            """, pushId, Guid.CreateVersion7(), host.Clock.GetUtcNow(), "BadDeviceToken " + token);

        var v = await SingleViolationAsync(host);

        Assert.Equal("push_log", v.Category);
        Assert.Equal("no tokens in clear", v.Rule);
        Assert.Equal($"push_log: push {pushId}", v.Location);
    }

    [Fact]
    public async Task AuditAsync_Should_ScanADetachedDayTable_When_ItHoldsAClearToken()
    {
        await using var host = await CleanAsync();
        // A day with no partition (they exist up to two days ahead), so the table is not yet past the window: only
        // the token it holds is a violation.
        var day = DateOnly.FromDateTime(host.Clock.GetUtcNow().UtcDateTime).AddDays(10);
        var table = $"push_events_{day:yyyyMMdd}";
        await ExecuteAsync(host, $"create table {table} (like push_events)");
        await ExecuteAsync(host, $"""
            insert into {table} (seq, stream_id, version, type, data, "timestamp") values (1, $1, 1, 'push_requested.v1', $2::jsonb, $3)
            """, Guid.CreateVersion7(), $"{{\"node\": \"{PurgeHost.NewToken()}\"}}", host.Clock.GetUtcNow().AddDays(-1));

        var report = await host.Get<RetentionAuditor>().AuditAsync(CancellationToken.None);

        Assert.False(report.Compliant);
        var v = Assert.Single(report.Violations);
        Assert.Equal(table, v.Category);
        Assert.Equal("no tokens in clear", v.Rule);
        Assert.Contains(report.Inventory, i => i.Category == "push_event_tables_detached" && i.Count == 1);
    }
}
