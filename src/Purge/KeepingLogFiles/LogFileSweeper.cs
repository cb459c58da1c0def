using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger;
using Monal.Push.Purge.Scheduling;

namespace Monal.Push.Purge.KeepingLogFiles;

/// <summary>
/// Deletes log files older than Retention:LogFiles. A file goes as soon as its oldest possible line (the start of
/// its UTC day) is older than the window, so no line outlives the promise; today's file is never touched.
/// </summary>
internal sealed class LogFileSweeper(IOptions<DataOptions> data, IOptions<RetentionOptions> options, ILogger<LogFileSweeper> logger)
    : IRetentionTask
{
    public string Job => RetentionJobNames.LogFiles;

    public DateTimeOffset CutoffFor(DateTimeOffset now) => now - options.Value.LogFiles;

    public Task RunAsync(DateTimeOffset cutoff, bool dryRun, IDictionary<string, long> deleted, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(deleted);
        deleted["log_files"] = 0;
        foreach (var file in Expired(LogFileNames.Folder(data.Value.Path), cutoff))
        {
            ct.ThrowIfCancellationRequested();
            if (!dryRun)
            {
                try
                {
                    File.Delete(file);
                    Log.LogFileDeleted(logger, Path.GetFileName(file));
                }
                catch (IOException ex)
                {
                    Log.LogFileDeleteFailed(logger, Path.GetFileName(file), ex);
                    throw;
                }
            }

            deleted["log_files"]++;
        }

        return Task.CompletedTask;
    }

    /// <summary>Log files whose day started before <paramref name="cutoff"/>, oldest first.</summary>
    public static IReadOnlyList<string> Expired(string folder, DateTimeOffset cutoff)
    {
        if (!Directory.Exists(folder))
        {
            return [];
        }

        return [.. Directory.GetFiles(folder, LogFileNames.Pattern)
            .Select(f => (File: f, Ok: LogFileNames.TryParseDay(f, out var day), Day: day))
            .Where(f => f.Ok && LogFileNames.StartOf(f.Day) < cutoff)
            .OrderBy(f => f.Day)
            .Select(f => f.File)];
    }
}
