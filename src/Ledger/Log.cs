using Microsoft.Extensions.Logging;

namespace Monal.Push.Ledger;

// Ledger log messages: event ids 1000-1999. No personal data in any of them.
internal static partial class Log
{
    [LoggerMessage(1001, LogLevel.Information, "Applied migration {Migration}")]
    public static partial void MigrationApplied(ILogger logger, string migration);

    [LoggerMessage(1010, LogLevel.Information, "Initialized the embedded PostgreSQL cluster")]
    public static partial void EmbeddedPostgresInitialized(ILogger logger);

    [LoggerMessage(1011, LogLevel.Information, "Started the embedded PostgreSQL on 127.0.0.1:{Port}")]
    public static partial void EmbeddedPostgresStarted(ILogger logger, int port);

    [LoggerMessage(1012, LogLevel.Information, "Reusing the embedded PostgreSQL already running on 127.0.0.1:{Port}")]
    public static partial void EmbeddedPostgresReused(ILogger logger, int port);

    [LoggerMessage(1013, LogLevel.Information, "Stopped the embedded PostgreSQL")]
    public static partial void EmbeddedPostgresStopped(ILogger logger);

    [LoggerMessage(1020, LogLevel.Debug, "A batch of {Count} appends failed with {SqlState}; retrying each alone")]
    public static partial void BatchSplit(ILogger logger, int count, string sqlState);

    [LoggerMessage(1022, LogLevel.Debug, "Could not notify feed readers of a committed append ({Error}); they will poll")]
    public static partial void NotifyFailed(ILogger logger, string error);

    [LoggerMessage(1030, LogLevel.Warning, "{Loop} lost the database ({Reason}); retrying in {Delay}")]
    public static partial void LoopBackingOff(ILogger logger, string loop, string reason, TimeSpan delay);

    [LoggerMessage(1031, LogLevel.Error, "{Loop} failed ({Reason}); retrying in {Delay}")]
    public static partial void LoopFailed(ILogger logger, string loop, string reason, TimeSpan delay, Exception exception);

    [LoggerMessage(1032, LogLevel.Warning, "Waiting for the ledger database ({Reason}); retrying in {Delay}")]
    public static partial void WaitingForDatabase(ILogger logger, string reason, TimeSpan delay);

    [LoggerMessage(1033, LogLevel.Information, "The ledger database is reachable again after {Attempts} attempts")]
    public static partial void DatabaseReachable(ILogger logger, int attempts);

    [LoggerMessage(1021, LogLevel.Warning, "A batch of {Count} appends failed; the callers were told")]
    public static partial void AppendFailed(ILogger logger, int count, Exception exception);
}
