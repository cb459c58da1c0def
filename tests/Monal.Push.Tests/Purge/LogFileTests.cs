using Microsoft.Extensions.Logging;
using Monal.Push.Purge.KeepingLogFiles;
using Monal.Push.Purge.Scheduling;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Purge;

[Trait("Category", "Postgres")]
public sealed class LogFileTests
{
    [Fact]
    public async Task RunAsync_Should_DeleteFilesOlderThanTheWindow_When_LogFilesOfVariousAgesExist()
    {
        await using var host = await PurgeHost.CreateAsync(clock: new ManualClock(new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero)));
        var folder = LogFileNames.Folder(host.DataPath);
        Directory.CreateDirectory(folder);
        // Cutoff: 2026-10-18 12:00. A file goes once the start of its day is older than that.
        string[] gone = ["monal-push-20261001.log", "monal-push-20261017.log", "monal-push-20261018.log"];
        string[] kept = ["monal-push-20261019.log", "monal-push-20261031.log", "notes.txt", "monal-push-latest.log"];
        foreach (var name in gone.Concat(kept))
        {
            await File.WriteAllTextAsync(Path.Combine(folder, name), "x\n");
        }

        var dry = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.LogFiles, dryRun: true, CancellationToken.None);
        Assert.Equal(3, dry.Deleted["log_files"]);
        Assert.All(gone, g => Assert.True(File.Exists(Path.Combine(folder, g))));

        var run = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.LogFiles, dryRun: false, CancellationToken.None);

        Assert.Equal(3, run.Deleted["log_files"]);
        Assert.All(gone, g => Assert.False(File.Exists(Path.Combine(folder, g)), g));
        Assert.All(kept, k => Assert.True(File.Exists(Path.Combine(folder, k)), k));
        Assert.True(File.Exists(Path.Combine(folder, "monal-push-20261101.log")), "the job's own log lines went to today's file");
    }

    [Fact]
    public async Task RollingFileLoggerProvider_Should_WriteOneFilePerUtcDay_When_TheClockCrossesMidnight()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 1, 23, 59, 0, TimeSpan.Zero));
        var data = Directory.CreateTempSubdirectory("monal-logs-").FullName;
        using (var provider = new RollingFileLoggerProvider(
            Microsoft.Extensions.Options.Options.Create(new Monal.Push.Ledger.DataOptions { Path = data }), clock))
        {
            var logger = provider.CreateLogger("Monal.Push.Test");
            logger.Log(LogLevel.Information, new EventId(5999), "first \"quoted\"\nline", null, (s, _) => s);
            clock.Advance(TimeSpan.FromMinutes(2));
            logger.Log(LogLevel.Warning, new EventId(5998), "second", new InvalidOperationException("secret@example.org"), (s, _) => s);
        }

        var first = await File.ReadAllLinesAsync(Path.Combine(data, "logs", "monal-push-20261101.log"));
        var second = await File.ReadAllLinesAsync(Path.Combine(data, "logs", "monal-push-20261102.log"));
        var line = Assert.Single(first);
        Assert.Equal("2026-11-01T23:59:00.000Z level=Information category=Monal.Push.Test event=5999 msg=\"first \\\"quoted\\\"\\nline\"", line);
        var warning = Assert.Single(second);
        Assert.StartsWith("2026-11-02T00:01:00.000Z level=Warning category=Monal.Push.Test event=5998 msg=\"second\" exception=System.InvalidOperationException", warning, StringComparison.Ordinal);
        Assert.DoesNotContain("secret@example.org", warning, StringComparison.Ordinal);
        Directory.Delete(data, recursive: true);
    }
}
