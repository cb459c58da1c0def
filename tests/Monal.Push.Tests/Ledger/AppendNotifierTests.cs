using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.Tests.Ledger;

/// <summary>The notifications of new events: bounded to one per interval under load, never lost, and immediate after a quiet spell.</summary>
[Trait("Category", "Postgres")]
public sealed class AppendNotifierTests
{
    [Fact]
    public async Task Signal_Should_SendAtMostOneNotificationPerIntervalAndOneAfterTheLastSignal_When_CommitsComeContinuously()
    {
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var listener = await ListenAsync(dataSource);
        var interval = TimeSpan.FromMilliseconds(200);
        var notifier = new AppendNotifier(dataSource, interval, NullLogger.Instance);

        var clock = Stopwatch.StartNew();
        var lastSignal = 0L;
        while (clock.Elapsed < TimeSpan.FromSeconds(1))
        {
            lastSignal = Stopwatch.GetTimestamp();
            notifier.Signal();
            await Task.Delay(2);
        }

        await notifier.DisposeAsync();
        var elapsed = clock.Elapsed;
        await listener.QuietAsync();

        var received = listener.Received.ToArray();
        // Without the interval, one NOTIFY per round trip: hundreds in this second.
        Assert.InRange(received.Length, 2, (int)(elapsed / interval) + 2);
        // The signals of the last interval were not dropped: a notification was sent after the last of them.
        Assert.Contains(received, at => at > lastSignal);
    }

    [Fact]
    public async Task Signal_Should_NotifyAtOnce_When_NothingWasSentForAnInterval()
    {
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var listener = await ListenAsync(dataSource);
        var notifier = new AppendNotifier(dataSource, TimeSpan.FromSeconds(30), NullLogger.Instance);

        notifier.Signal();

        // The interval holds back only what follows a notification, not the first one.
        var deadline = Stopwatch.StartNew();
        while (listener.Received.IsEmpty && deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(10);
        }

        Assert.Single(listener.Received);
    }

    private static async Task<Listener> ListenAsync(NpgsqlDataSource dataSource)
    {
        var listener = new Listener(await dataSource.OpenConnectionAsync());
        await using (var listen = new NpgsqlCommand($"listen {EventStore.NotifyChannel}", listener.Connection))
        {
            await listen.ExecuteNonQueryAsync();
        }

        listener.Start();
        return listener;
    }

    /// <summary>Records when each notification arrived (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    private sealed class Listener(NpgsqlConnection connection) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private Task _loop = Task.CompletedTask;

        public NpgsqlConnection Connection => connection;

        public ConcurrentQueue<long> Received { get; } = new();

        public void Start()
        {
            connection.Notification += (_, _) => Received.Enqueue(Stopwatch.GetTimestamp());
            _loop = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    await connection.WaitAsync(_stop.Token);
                }
            });
        }

        /// <summary>Waits until no notification has arrived for half a second.</summary>
        public async Task QuietAsync()
        {
            var count = -1;
            while (count != Received.Count)
            {
                count = Received.Count;
                await Task.Delay(500);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _loop.ContinueWith(_ => { }, TaskScheduler.Default);
            await connection.DisposeAsync();
            _stop.Dispose();
        }
    }
}
