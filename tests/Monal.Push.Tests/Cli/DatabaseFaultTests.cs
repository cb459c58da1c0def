using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Ledger.Embedded;
using Monal.Push.Ledger.Faults;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// Issue 15, point 1: PostgreSQL restarted (pg_ctl restart -m fast, as for a minor upgrade) under a flood of publishes
/// through the real `serve` host. The process stays up, publishes meanwhile are answered `wait`, and every publish
/// answered `result` reaches APNs exactly once (no apns-id answered 200 twice). Each test runs its own cluster: the
/// run's cluster is shared by tests running in parallel.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class DatabaseFaultTests
{
    [Fact]
    public async Task Serve_Should_StayUpAndDeliverEveryAcknowledgedPushOnce_When_PostgresRestartsUnderAFlood()
    {
        var (cluster, folder) = await TestDatabase.PrivateClusterAsync();
        try
        {
            // With the retention scheduler (Quartz's clustered job store on the same database) running too.
            await using var harness = await ServeHarness.CreateAsync(TimeSpan.FromMilliseconds(2), cluster.ConnectionString(), "--Retention:Scheduler=true");
            await harness.StartAsync();
            var lifetime = harness.Host!.Services.GetRequiredService<IHostApplicationLifetime>();
            var scheduler = await harness.Host.Services.GetRequiredService<Quartz.ISchedulerFactory>().GetScheduler();
            var availability = harness.Host.Services.GetRequiredService<LedgerAvailability>();

            const int count = 2000;
            const int window = 200;
            var tokens = Enumerable.Range(0, count).Select(_ => ServeHarness.NewToken()).ToArray();
            Task? restart = null;
            for (var i = 0; i < count; i++)
            {
                if (i == count / 4)
                {
                    // The flood is being answered: restart now, while the rest is still being written.
                    await ServeHarness.WaitAsync(() => Task.FromResult(harness.Replies.Values.Count(r => r.IsResult) >= 100), seconds: 30);
                    restart = cluster.RestartAsync();
                }

                // At most `window` publishes unanswered: the flood lasts across the restart instead of being
                // written in one go before it.
                var sent = i;
                await ServeHarness.WaitAsync(() => Task.FromResult(harness.Replies.Count > sent - window), seconds: 60);
                await harness.Link!.WriteAsync(ServeHarness.Publish($"p{i}", tokens[i]), CancellationToken.None);
            }

            await restart!;
            await ServeHarness.WaitAsync(() => Task.FromResult(harness.Replies.Count == count), seconds: 60);

            // Once the database is back the pipeline resumes: a new publish is acknowledged.
            var after = ServeHarness.NewToken();
            await harness.Link!.WriteAsync(ServeHarness.Publish("after", after), CancellationToken.None);
            await ServeHarness.WaitAsync(() => Task.FromResult(harness.Replies.ContainsKey("after")), seconds: 60);
            Assert.True(harness.Replies["after"].IsResult, "a publish after the restart is acknowledged");
            await WaitForEmptyQueueAsync(harness);

            Assert.False(lifetime.ApplicationStopping.IsCancellationRequested, "serve stayed up");
            Assert.Equal(Quartz.SchedulerStatus.Running, await scheduler.GetStatus(CancellationToken.None));
            var replies = harness.Replies.Values.ToList();
            Assert.All(replies, r => Assert.True(r.IsResult || r.ErrorType == "wait", $"{r.Id}: {r.ErrorType}/{r.Condition}"));
            Assert.True(replies.Any(r => !r.IsResult) || availability.Faults > 0, "the restart was felt by serve");

            var answered = harness.Apns.Requests.Where(r => r.Status == 200).ToList();
            var twice = answered.GroupBy(r => r.Header("apns-id")).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
            Assert.Empty(twice);
            var delivered = answered.GroupBy(r => r.DeviceToken!).ToDictionary(g => g.Key, g => g.Count());
            var acknowledged = replies.Where(r => r.IsResult && r.Id != "after").Select(r => tokens[int.Parse(r.Id[1..], System.Globalization.CultureInfo.InvariantCulture)]).ToList();
            Assert.NotEmpty(acknowledged);
            Assert.All(acknowledged, t => Assert.Equal(1, delivered.GetValueOrDefault(t)));
            Assert.Equal(1, delivered.GetValueOrDefault(after));
        }
        finally
        {
            await cluster.DisposeAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Serve_Should_WaitForTheDatabaseSayingSo_When_StartedWhileItIsDown()
    {
        var (cluster, folder) = await TestDatabase.PrivateClusterAsync();
        var connectionString = cluster.ConnectionString();
        await cluster.DisposeAsync();
        EmbeddedPostgres? restarted = null;
        try
        {
            await using var harness = await ServeHarness.CreateAsync(connectionString: connectionString);
            var lines = new ConcurrentQueue<string>();
            var starting = harness.StartAsync(overrides: s => s.AddSingleton<ILoggerProvider>(new QueueLoggerProvider(lines)));

            await ServeHarness.WaitAsync(() => Task.FromResult(lines.Any(l => l.Contains("Waiting for the ledger database", StringComparison.Ordinal))), seconds: 30);
            Assert.False(starting.IsCompleted, "serve waits instead of exiting");

            restarted = await EmbeddedPostgres.StartAsync(folder, NullLogger.Instance);
            Assert.Equal(connectionString, restarted.ConnectionString());
            await starting.WaitAsync(TimeSpan.FromSeconds(60));

            var token = ServeHarness.NewToken();
            await harness.Link!.WriteAsync(ServeHarness.Publish("p0", token), CancellationToken.None);
            await ServeHarness.WaitAsync(() => Task.FromResult(harness.Replies.ContainsKey("p0")), seconds: 30);
            Assert.True(harness.Replies["p0"].IsResult);
            await WaitForEmptyQueueAsync(harness);
            Assert.Single(harness.Apns.Requests, r => r.DeviceToken == token && r.Status == 200);
        }
        finally
        {
            if (restarted is not null)
            {
                await restarted.DisposeAsync();
            }

            Directory.Delete(folder, recursive: true);
        }
    }

    private static Task WaitForEmptyQueueAsync(ServeHarness harness) => ServeHarness.WaitAsync(async () =>
    {
        try
        {
            return await harness.CountAsync("select count(*) from push_queue") == 0;
        }
        catch (NpgsqlException)
        {
            return false; // a pooled connection of the test's own from before the restart
        }
    });

    private sealed class QueueLoggerProvider(ConcurrentQueue<string> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new QueueLogger(lines);

        public void Dispose()
        {
        }

        private sealed class QueueLogger(ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                lines.Enqueue(formatter(state, exception));
        }
    }
}
