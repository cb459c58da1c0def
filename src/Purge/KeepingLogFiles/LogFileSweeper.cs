using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger;
using Monal.Push.Purge.Scheduling;

namespace Monal.Push.Purge.KeepingLogFiles;

/// <summary>
/// Deletes log files older than Retention:LogFiles: the server's and the embedded PostgreSQL cluster's (see
/// <see cref="LogFileNames"/>). A file goes as soon as its oldest possible line (the start of its UTC day) is older
/// than the window, so no line outlives the promise; today's file is never touched.
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
        var dataPath = data.Value.Path;
        var expired = Expired(LogFileNames.Folder(dataPath), LogFileNames.Pattern, cutoff)
            .Concat(Expired(LogFileNames.EmbeddedFolder(dataPath), LogFileNames.EmbeddedPattern, cutoff))
            .ToList();
        // The embedded cluster's startup log is written at its start only; a cluster that ran longer than the window
        // leaves it behind (the postmaster keeps writing to the unlinked file, if at all).
        if (LogFileNames.EmbeddedStartupLogSince(dataPath) < cutoff)
        {
            expired.Add(LogFileNames.EmbeddedStartupLog(dataPath));
        }

        foreach (var file in expired)
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

    /// <summary>Log files of one kind whose day started before <paramref name="cutoff"/>, oldest first.</summary>
    private static IReadOnlyList<string> Expired(string folder, string pattern, DateTimeOffset cutoff) =>
        [.. LogFileNames.Dated(folder, pattern).Where(f => LogFileNames.StartOf(f.Day) < cutoff).Select(f => f.File)];
}
