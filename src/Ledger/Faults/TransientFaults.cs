using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Monal.Push.Ledger.Faults;

/// <summary>
/// The one place that decides whether a database failure is "try again later" (issue 15): a dropped connection, a
/// restarting or failing-over server (SQLSTATE 57P01, 57P02, 57P03, class 08, 25006 on a demoted primary), connection
/// refused, a pool or command timeout, too many clients. Every background loop asks it before backing off, so a
/// PostgreSQL restart never ends a loop, and with it (BackgroundServiceExceptionBehavior.StopHost) the process.
/// </summary>
public static class TransientFaults
{
    /// <summary>
    /// True when <paramref name="ex"/> is a database or network failure that may pass. A cancellation is transient
    /// unless <paramref name="shutdown"/> (ours) asked for it: Npgsql reports a pool wait or a command timeout as a
    /// cancellation too, and that is not a shutdown.
    /// </summary>
    public static bool IsTransient(Exception ex, CancellationToken shutdown)
    {
        ArgumentNullException.ThrowIfNull(ex);
        return ex switch
        {
            OperationCanceledException => !shutdown.IsCancellationRequested,
            PostgresException pg => IsTransientSqlState(pg.SqlState) || pg.IsTransient,
            // Client side: connection refused or reset, stream read failures, pool exhaustion, timeouts.
            NpgsqlException => true,
            SocketException or IOException or TimeoutException => true,
            _ => ex.InnerException is { } inner && IsTransient(inner, shutdown),
        };
    }

    /// <summary>SQLSTATEs a server says while it stops, starts, fails over or runs out of room.</summary>
    public static bool IsTransientSqlState(string sqlState)
    {
        ArgumentNullException.ThrowIfNull(sqlState);
        return sqlState.StartsWith("08", StringComparison.Ordinal) // connection exception
            || sqlState.StartsWith("53", StringComparison.Ordinal) // insufficient resources (53300 too many clients)
            || sqlState is "57P01" or "57P02" or "57P03" // admin / crash shutdown, cannot connect now
                or "25006" // read-only transaction: a primary demoted by a failover
                or "40001" or "40P01"; // serialization failure, deadlock
    }

    /// <summary>A short, data-free description for logs and /health/ready: a SQLSTATE or an exception kind.</summary>
    public static string Describe(Exception ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        return ex switch
        {
            PostgresException pg => "SQLSTATE " + pg.SqlState,
            SocketException s => "socket " + s.SocketErrorCode,
            OperationCanceledException => "timed out",
            NpgsqlException { InnerException: { } inner } => Describe(inner),
            _ => ex.GetType().Name,
        };
    }

    /// <summary>
    /// Logs a failure of <paramref name="loop"/> (Warning when transient, Error otherwise: a loop outlives both),
    /// tells <paramref name="availability"/>, and waits the backoff's next delay. Returns false when shutting down.
    /// </summary>
    public static async Task<bool> BackOffAsync(
        ILogger logger, string loop, Exception ex, Backoff backoff, LedgerAvailability? availability, CancellationToken shutdown)
    {
        ArgumentNullException.ThrowIfNull(backoff);
        var delay = backoff.Next();
        var reason = Describe(ex);
        if (IsTransient(ex, shutdown))
        {
            availability?.Failed(loop, reason);
            Log.LoopBackingOff(logger, loop, reason, delay);
        }
        else
        {
            Log.LoopFailed(logger, loop, reason, delay, ex);
        }

        try
        {
            await Task.Delay(delay, shutdown);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
