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
        Assert.Contains(report.Inventory, i => i.Category == "domain_usage_pushes" && i.Count == 24 && i.Compliant);
        Assert.Contains(report.Inventory, i => i.Category == "domain_usage" && i.Count == 2 && i.Limit is null);
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
}
