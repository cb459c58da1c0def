using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger;

namespace Monal.Push.Purge.KeepingLogFiles;

/// <summary>
/// Writes log lines to one file per UTC day, <c>&lt;Data:Path&gt;/logs/monal-push-YYYYMMDD.log</c>, so that retention
/// can delete whole days (LogFileSweeper). Lines are plain and structured:
/// <c>2026-11-01T12:00:00.000Z level=Information category=… event=5001 msg="…"</c>. Exceptions are written as
/// their type and stack trace only: their messages may quote data (redact by default).
/// </summary>
[ProviderAlias("File")]
public sealed class RollingFileLoggerProvider : ILoggerProvider
{
    private readonly string _folder;
    private readonly TimeProvider _clock;
    private readonly Lock _gate = new();
    private FileStream? _stream;
    private StreamWriter? _writer;
    private DateOnly _day;
    private bool _disposed;

    /// <summary>Logs under the data folder, dating lines and files by <paramref name="clock"/>.</summary>
    public RollingFileLoggerProvider(IOptions<DataOptions> data, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(data);
        _folder = LogFileNames.Folder(data.Value.Path);
        _clock = clock;
    }

    /// <summary>The folder the files are written to.</summary>
    public string Folder => _folder;

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new FileLogger(this, categoryName);

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _writer?.Dispose();
            _writer = null;
        }
    }

    private void Write(LogLevel level, string category, EventId eventId, string message, Exception? exception)
    {
        var now = _clock.GetUtcNow();
        var line = new StringBuilder(128)
            .Append(now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fff'Z'", CultureInfo.InvariantCulture))
            .Append(" level=").Append(level)
            .Append(" category=").Append(category)
            .Append(" event=").Append(eventId.Id)
            .Append(" msg=").Append(Quote(message));
        if (exception is not null)
        {
            line.Append(" exception=").Append(exception.GetType().FullName)
                .Append(" stack=").Append(Quote(exception.StackTrace ?? ""));
        }

        var day = DateOnly.FromDateTime(now.UtcDateTime);
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (_writer is null || day != _day)
            {
                _writer?.Dispose();
                Directory.CreateDirectory(_folder);
                // Shared and append-only: several processes on one data folder each add whole lines, and retention
                // may delete a closed day's file while nobody holds it.
                _stream = new FileStream(Path.Combine(_folder, LogFileNames.FileName(day)), FileMode.Append, FileAccess.Write,
                    FileShare.ReadWrite | FileShare.Delete);
                _writer = new StreamWriter(_stream, new UTF8Encoding(false)) { AutoFlush = true };
                _day = day;
            }

            // .NET's FileMode.Append only seeks once, at open (no O_APPEND): seek again so lines another process
            // appended meanwhile are not overwritten. AutoFlush leaves nothing buffered between lines.
            _stream!.Seek(0, SeekOrigin.End);
            _writer.WriteLine(line.ToString());
        }
    }

    private static string Quote(string value) =>
        "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)
            .Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal) + "\"";

    private sealed class FileLogger(RollingFileLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            ArgumentNullException.ThrowIfNull(formatter);
            if (IsEnabled(logLevel))
            {
                provider.Write(logLevel, category, eventId, formatter(state, exception), exception);
            }
        }
    }
}
