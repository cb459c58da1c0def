using Microsoft.Extensions.Logging;

namespace Monal.Push.Projections;

// Projection log messages: event ids 4000-4999. No personal data: no token, device UUID or
// JID, and no exception messages (they can quote values); the exception type and SQLSTATE say enough.
internal static partial class Log
{
    [LoggerMessage(4001, LogLevel.Information, "This node leads the projection daemon")]
    public static partial void LeaderAcquired(ILogger logger);

    [LoggerMessage(4002, LogLevel.Warning, "This node lost the projection daemon's leadership ({Error})")]
    public static partial void LeaderLost(ILogger logger, string error);

    [LoggerMessage(4003, LogLevel.Debug, "Another node leads the projection daemon; retrying in {Retry}")]
    public static partial void NotLeader(ILogger logger, TimeSpan retry);

    [LoggerMessage(4010, LogLevel.Warning,
        "Projection {Projection} failed to apply the page after {Position} ({Error}); retrying in {Delay}")]
    public static partial void PageFailed(ILogger logger, string projection, long position, string error, TimeSpan delay);

    [LoggerMessage(4011, LogLevel.Debug, "Projection {Projection} is being rebuilt elsewhere; waiting")]
    public static partial void ProjectionPaused(ILogger logger, string projection);

    [LoggerMessage(4012, LogLevel.Debug, "Projection {Projection}'s checkpoint was moved by another writer; reloading")]
    public static partial void CheckpointMoved(ILogger logger, string projection);

    [LoggerMessage(4013, LogLevel.Debug, "Projection {Projection} applied {Count} events up to {Position}")]
    public static partial void PageApplied(ILogger logger, string projection, int count, long position);

    [LoggerMessage(4032, LogLevel.Debug, "Projection {Projection} replayed {Count} positions up to {Position} in the database")]
    public static partial void RangeApplied(ILogger logger, string projection, long count, long position);

    [LoggerMessage(4020, LogLevel.Information, "Rebuilding projection {Projection} from {Total} events")]
    public static partial void RebuildStarted(ILogger logger, string projection, long total);

    [LoggerMessage(4021, LogLevel.Information, "Rebuilt projection {Projection}: {Events} events in {ElapsedMs} ms")]
    public static partial void RebuildFinished(ILogger logger, string projection, long events, long elapsedMs);

    [LoggerMessage(4030, LogLevel.Warning, "The device cache lost its notification channel ({Error}); serving from the database")]
    public static partial void DirectoryListenerLost(ILogger logger, string error);

    [LoggerMessage(4031, LogLevel.Debug, "The device cache listens for device changes")]
    public static partial void DirectoryListening(ILogger logger);

    /// <summary>A description of a failure that carries no personal data.</summary>
    public static string Describe(Exception ex) => ex is Npgsql.PostgresException pg
        ? $"{pg.GetType().Name} {pg.SqlState}{(pg.ConstraintName is null ? "" : " " + pg.ConstraintName)}"
        : ex.GetType().Name;
}
