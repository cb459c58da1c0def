using Microsoft.Extensions.Logging;

namespace Monal.Push.Purge;

// Purge log messages: event ids 5000-5999. Device ids appear only as short keyed hashes.
internal static partial class Log
{
    [LoggerMessage(5001, LogLevel.Information, "Retention job {Job} finished in {DurationMs} ms: {Deleted} (dry run: {DryRun})")]
    public static partial void RetentionRunFinished(ILogger logger, string job, double durationMs, string deleted, bool dryRun);

    [LoggerMessage(5002, LogLevel.Error, "Retention job {Job} failed; it runs again at its next trigger")]
    public static partial void RetentionRunFailed(ILogger logger, string job, Exception exception);

    [LoggerMessage(5003, LogLevel.Warning, "Could not record the evidence of retention job {Job}")]
    public static partial void EvidenceFailed(ILogger logger, string job, Exception exception);

    [LoggerMessage(5010, LogLevel.Information, "Erased device {Device} ({Cause}), receipt {ReceiptId}")]
    public static partial void DeviceErased(ILogger logger, string device, string cause, Guid receiptId);

    [LoggerMessage(5020, LogLevel.Information, "Answered a subject access request {RequestId} as {Format}")]
    public static partial void SubjectAccessExported(ILogger logger, Guid requestId, string format);

    [LoggerMessage(5030, LogLevel.Information, "Deleted log file {File}")]
    public static partial void LogFileDeleted(ILogger logger, string file);

    [LoggerMessage(5031, LogLevel.Warning, "Could not delete log file {File}")]
    public static partial void LogFileDeleteFailed(ILogger logger, string file, Exception exception);

    [LoggerMessage(5040, LogLevel.Information, "Retention audit: {Violations} violation(s)")]
    public static partial void AuditFinished(ILogger logger, int violations);
}
