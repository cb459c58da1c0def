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

    [LoggerMessage(1020, LogLevel.Debug, "A batch of {Count} appends failed with {SqlState}; retrying it in halves")]
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

    [LoggerMessage(1040, LogLevel.Information, "Recorded the master key's check value: nodes with another master key will be refused")]
    public static partial void MasterKeyRecorded(ILogger logger);

    [LoggerMessage(1041, LogLevel.Information, "The master key matches the database's key check value")]
    public static partial void MasterKeyMatched(ILogger logger);

    [LoggerMessage(1042, LogLevel.Information, "Connection budget: {Budget}")]
    public static partial void ConnectionBudget(ILogger logger, string budget);

    [LoggerMessage(1043, LogLevel.Warning, "Connection budget: {Budget}. This node's pool alone exceeds what PostgreSQL allows: lower Maximum Pool Size in ConnectionStrings:Ledger or raise max_connections")]
    public static partial void ConnectionBudgetTooSmall(ILogger logger, string budget);

    [LoggerMessage(1044, LogLevel.Warning, "The master key was not checked against the database: its schema has no master_key_check yet (Ledger:MigrateOnStart is off). Run `monal-push migrate`")]
    public static partial void MasterKeyNotChecked(ILogger logger);
}
