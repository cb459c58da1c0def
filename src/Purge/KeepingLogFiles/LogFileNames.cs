using System.Globalization;

namespace Monal.Push.Purge.KeepingLogFiles;

/// <summary>Where log files live and how they are named: <c>&lt;Data:Path&gt;/logs/monal-push-YYYYMMDD.log</c>, one per UTC day.</summary>
public static class LogFileNames
{
    /// <summary>The name pattern, for Directory.GetFiles.</summary>
    public const string Pattern = "monal-push-*.log";

    /// <summary>The log folder under the data folder.</summary>
    public static string Folder(string dataPath) => Path.Combine(dataPath, "logs");

    /// <summary>The file of one UTC day.</summary>
    public static string FileName(DateOnly day) => $"monal-push-{day.ToString("yyyyMMdd", CultureInfo.InvariantCulture)}.log";

    /// <summary>The UTC day a log file belongs to, from its name.</summary>
    public static bool TryParseDay(string path, out DateOnly day)
    {
        var name = Path.GetFileName(path);
        day = default;
        return name.StartsWith("monal-push-", StringComparison.Ordinal)
            && name.EndsWith(".log", StringComparison.Ordinal)
            && DateOnly.TryParseExact(name["monal-push-".Length..^".log".Length], "yyyyMMdd", CultureInfo.InvariantCulture,
                DateTimeStyles.None, out day);
    }

    /// <summary>The oldest moment a file's entries can be from: the start of its UTC day.</summary>
    public static DateTimeOffset StartOf(DateOnly day) => new(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
}
