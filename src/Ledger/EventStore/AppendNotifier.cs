using Microsoft.Extensions.Logging;
using Npgsql;

namespace Monal.Push.Ledger.EventStore;

/// <summary>
/// Wakes feed readers after appends committed, with at most one NOTIFY in flight: a commit while one is being sent
/// asks for exactly one more, so under load many batches share one notification instead of each paying a round trip
/// and PostgreSQL's database-wide notify lock. The NOTIFY runs in a transaction of its own: inside the append it would
/// hold that lock from pre-commit until the commit's WAL flush returned, making every appending transaction fsync one
/// at a time. It needs no flush of its own (it writes nothing readers depend on). A lost notification only delays
/// readers until their polling fallback.
/// </summary>
internal sealed class AppendNotifier(NpgsqlDataSource dataSource, ILogger logger) : IAsyncDisposable
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
            await SendAsync();
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
