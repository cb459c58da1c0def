using System.Globalization;
using Monal.Push.Ledger.Embedded;

namespace Monal.Push.Purge.KeepingLogFiles;

/// <summary>
/// Where log files live and how they are named: the server's own, <c>&lt;Data:Path&gt;/logs/monal-push-YYYYMMDD.log</c>,
/// and the embedded PostgreSQL cluster's, <c>&lt;Data:Path&gt;/postgres/log/postgresql-YYYYMMDD.log</c> (when `serve`
/// runs the embedded default), each one per UTC day. The policy's "server logs" are both.
/// </summary>
public static class LogFileNames
{
    private const string Prefix = "monal-push-";
    private const string EmbeddedPrefix = "postgresql-";
    private const string Extension = ".log";

    /// <summary>The name pattern of the server's files, for Directory.GetFiles.</summary>
    public const string Pattern = Prefix + "*" + Extension;

    /// <summary>The name pattern of the embedded cluster's files.</summary>
    public const string EmbeddedPattern = EmbeddedPrefix + "*" + Extension;

    /// <summary>The server's log folder under the data folder.</summary>
    public static string Folder(string dataPath) => Path.Combine(dataPath, "logs");

    /// <summary>The embedded cluster's log folder under the data folder (absent with an external PostgreSQL).</summary>
    public static string EmbeddedFolder(string dataPath) =>
        Path.Combine(EmbeddedPostgres.ClusterFolder(dataPath), EmbeddedPostgres.LogFolderName);

    /// <summary>The embedded cluster's startup log (what the postmaster says before its logging collector runs).</summary>
    public static string EmbeddedStartupLog(string dataPath) =>
        Path.Combine(EmbeddedPostgres.ClusterFolder(dataPath), EmbeddedPostgres.StartupLogName);

    /// <summary>
    /// How old the embedded cluster's startup log's first line can be (it is written when the cluster starts and
    /// deleted before the next start): the earlier of the file's creation and last write; null without the file.
    /// </summary>
    public static DateTimeOffset? EmbeddedStartupLogSince(string dataPath)
    {
        var file = EmbeddedStartupLog(dataPath);
        if (!File.Exists(file))
        {
            return null;
        }

        var created = File.GetCreationTimeUtc(file);
        var written = File.GetLastWriteTimeUtc(file);
        return new DateTimeOffset(created < written ? created : written, TimeSpan.Zero);
    }

    /// <summary>The server's file of one UTC day.</summary>
    public static string FileName(DateOnly day) => Prefix + Day(day) + Extension;

    /// <summary>The embedded cluster's file of one UTC day (its log_filename, postgresql-%Y%m%d.log in UTC).</summary>
    public static string EmbeddedFileName(DateOnly day) => EmbeddedPrefix + Day(day) + Extension;

    /// <summary>The dated files of one kind in a folder, with their UTC day, oldest first.</summary>
    public static IReadOnlyList<(string File, DateOnly Day)> Dated(string folder, string pattern)
    {
        if (!Directory.Exists(folder))
        {
            return [];
        }

        return [.. Directory.GetFiles(folder, pattern)
            .Select(f => (File: f, Ok: TryParseDay(f, out var day), Day: day))
            .Where(f => f.Ok)
            .OrderBy(f => f.Day)
            .Select(f => (f.File, f.Day))];
    }

    /// <summary>The UTC day a log file (the server's or the embedded cluster's) belongs to, from its name.</summary>
    public static bool TryParseDay(string path, out DateOnly day)
    {
        var name = Path.GetFileName(path);
        day = default;
        var prefix = name.StartsWith(Prefix, StringComparison.Ordinal) ? Prefix
            : name.StartsWith(EmbeddedPrefix, StringComparison.Ordinal) ? EmbeddedPrefix
            : null;
        return prefix is not null
            && name.EndsWith(Extension, StringComparison.Ordinal)
            && DateOnly.TryParseExact(name[prefix.Length..^Extension.Length], "yyyyMMdd", CultureInfo.InvariantCulture,
                DateTimeStyles.None, out day);
    }

    /// <summary>The oldest moment a file's entries can be from: the start of its UTC day.</summary>
    public static DateTimeOffset StartOf(DateOnly day) => new(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);

    private static string Day(DateOnly day) => day.ToString("yyyyMMdd", CultureInfo.InvariantCulture);
}
