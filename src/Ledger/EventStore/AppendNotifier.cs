using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Monal.Push.Ledger.EventStore;

/// <summary>
/// Wakes feed readers after appends committed, with at most one NOTIFY in flight and at most one per
/// <c>interval</c> (<see cref="LedgerOptions.NotifyInterval"/>): a commit while one is being sent, or within the
/// interval after it, asks for exactly one more, sent when the interval has passed. So under load many batches share
/// one notification instead of each paying a transaction of its own and PostgreSQL's database-wide notify lock, while
/// the first commit after a quiet spell is notified at once. The NOTIFY runs in a transaction of its own: inside the
/// append it would hold that lock from pre-commit until the commit's WAL flush returned, making every appending
/// transaction fsync one at a time. It needs no flush of its own (it writes nothing readers depend on). A lost
/// notification only delays readers until their polling fallback.
/// </summary>
internal sealed class AppendNotifier(NpgsqlDataSource dataSource, TimeSpan interval, ILogger logger) : IAsyncDisposable
{
    private const int Idle = 0;
    private const int Sending = 1;
    private const int SendingAndAsked = 2;

    private int _state;
    private Task _loop = Task.CompletedTask;

    /// <summary>Asks for a notification after the commit that just happened; never waits for it.</summary>
    public void Signal()
    {
        while (true)
        {
            var state = Volatile.Read(ref _state);
            if (state == SendingAndAsked)
            {
                return;
            }

            if (Interlocked.CompareExchange(ref _state, state + 1, state) == state)
            {
                if (state == Idle)
                {
                    _loop = Task.Run(SendLoopAsync);
                }

                return;
            }
        }
    }

    private async Task SendLoopAsync()
    {
        do
        {
            // Whatever was asked until now is covered by the NOTIFY about to be sent (it starts after those commits).
            Interlocked.Exchange(ref _state, Sending);
            var sentAt = Stopwatch.GetTimestamp();
            await SendAsync();

            // Stay "sending" for the rest of the interval: commits in it are covered by one notification at its end.
            var rest = interval - Stopwatch.GetElapsedTime(sentAt);
            if (rest > TimeSpan.Zero)
            {
                await Task.Delay(rest);
            }
        }
        while (Interlocked.CompareExchange(ref _state, Idle, Sending) != Sending);
    }

    private async Task SendAsync()
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(CancellationToken.None);
            await using var notify = new NpgsqlBatch(connection);
            notify.BatchCommands.Add(TransactionSetting.AsynchronousCommit());
            notify.BatchCommands.Add(new NpgsqlBatchCommand($"select pg_notify('{EventStore.NotifyChannel}', '')"));
            await notify.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or ObjectDisposedException)
        {
            // The events are committed: their callers already heard "done"; readers will poll.
            Log.NotifyFailed(logger, ex.GetType().Name);
        }
    }

    /// <summary>Waits for a notification in flight.</summary>
    public async ValueTask DisposeAsync() => await _loop;
}
