using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Projections.Daemon;
using Monal.Push.Projections.PushLog;
using Monal.Push.Tests.Fixtures;
using Npgsql;
using static Monal.Push.Tests.Projections.ProjectionKit;

namespace Monal.Push.Tests.Projections;

/// <summary>The push log and domain usage, driven page by page. Each test owns a database: the daemon reads everything.</summary>
[Trait("Category", "Postgres")]
public sealed class AsyncProjectionTests
{
    private const string PushLogRows = "select * from push_log order by push_id";
    private const string UsageRows = "select * from domain_usage order by day, domain";

    /// <summary>One device, one push per outcome rule; returns the push ids by name.</summary>
    internal static async Task<Dictionary<string, Guid>> AppendEveryOutcomeAsync(EventStore store, string domain = "a.example", long ticks = 0)
    {
        // ticks shifts every timestamp below a microsecond, where text parsing rounds and binary encoding truncates.
        var T0 = ProjectionKit.T0.AddTicks(ticks);
        var device = Guid.CreateVersion7();
        await store.AppendAsync(device, "device", ExpectedVersion.Any, [Registered(device)]);
        var p = new[] { "delivered", "transient", "retried", "failed", "expired", "invalidated", "rejected", "refined", "pending" }
            .ToDictionary(n => n, _ => Guid.CreateVersion7());
        foreach (var (_, id) in p)
        {
            await store.AppendAsync(device, "device", ExpectedVersion.Any, [Requested(device, domain, id, T0)]);
        }

        object[] outcomes =
        [
            new PushDelivered(p["delivered"], device, p["delivered"], T0.AddSeconds(1), 42.5),
            new PushFailed(p["transient"], device, 503, "ServiceUnavailable", true, T0.AddSeconds(1)),
            new PushFailed(p["retried"], device, 500, "InternalServerError", true, T0.AddSeconds(1)),
            new PushFailed(p["transient"], device, 429, "TooManyRequests", true, T0.AddSeconds(2)),
            new PushDelivered(p["retried"], device, p["retried"], T0.AddSeconds(3), 3000),
            new PushFailed(p["retried"], device, 500, "InternalServerError", true, T0.AddSeconds(4)),
            new PushFailed(p["failed"], device, 400, "BadPriority", false, T0.AddSeconds(1)),
            new PushFailed(p["expired"], device, 503, "ServiceUnavailable", true, T0.AddHours(1)),
            new TokenInvalidated(p["invalidated"], device, "Unregistered", T0, T0.AddSeconds(1)),
            new TokenRejected(p["rejected"], device, "BadDeviceToken", T0.AddSeconds(1)),
            new PushFailed(p["refined"], device, 410, "Unregistered", false, T0.AddSeconds(1)),
            new TokenInvalidated(p["refined"], device, "Unregistered", T0, T0.AddSeconds(2)),
        ];
        foreach (var o in outcomes)
        {
            // Outcomes are appended without the inline projection's push check (they are not PushRequested).
            await store.AppendAsync(device, "device", ExpectedVersion.Any, [o]);
        }

        return p;
    }

    [Theory]
    [InlineData(1000, false)]
    [InlineData(2, false)]
    [InlineData(1000, true)]
    [InlineData(2, true)]
    [InlineData(1, true)]
    public async Task CatchUpAsync_Should_RecordEveryOutcomeRule_When_EventsArriveInOneOrManyPages(int pageSize, bool inDatabase)
    {
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = Store(dataSource);
        await using var notifications = new EventNotifications(dataSource);
        var daemon = Daemon(store, notifications, Options(pageSize, rangeSize: pageSize));
        var p = await AppendEveryOutcomeAsync(store);

        // In the database: the daemon replays settled ranges of positions (IRangeReplay); otherwise it ships the
        // events page by page through ApplyAsync. Both must record the same rows.
        foreach (var projection in AsyncProjections().Select(a => inDatabase ? a : new PageOnly(a)))
        {
            await daemon.CatchUpAsync(projection);
        }

        async Task<(string Outcome, int? Status, string? Reason, double? Latency)> Row(string name)
        {
            await using var cmd = dataSource.CreateCommand("select outcome, status, reason, latency_ms from push_log where push_id = $1");
            cmd.Parameters.Add(new() { Value = p[name] });
            await using var r = await cmd.ExecuteReaderAsync();
            Assert.True(await r.ReadAsync(), name);
            return (r.GetString(0), r.IsDBNull(1) ? null : r.GetInt32(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetDouble(3));
        }

        Assert.Equal(("delivered", 200, null, 42.5), await Row("delivered"));
        Assert.Equal(("pending", 429, "TooManyRequests", 2000.0), await Row("transient"));
        Assert.Equal(("delivered", 200, null, 3000.0), await Row("retried"));
        Assert.Equal(("failed", 400, "BadPriority", 1000.0), await Row("failed"));
        Assert.Equal(("expired", 503, "ServiceUnavailable", 3_600_000.0), await Row("expired"));
        Assert.Equal(("invalidated", 410, "Unregistered", 1000.0), await Row("invalidated"));
        Assert.Equal(("rejected", 400, "BadDeviceToken", 1000.0), await Row("rejected"));
        Assert.Equal(("invalidated", 410, "Unregistered", 2000.0), await Row("refined"));
        Assert.Equal(("pending", null, null, null), await Row("pending"));
        Assert.Equal(9L, await ScalarAsync<long>(dataSource, "select count(*) from push_log where domain = 'a.example' and requested_at = $1", T0));
        Assert.Equal(
            ["(2026-11-01,a.example,9,2,2,2,1)"],
            await RowsAsync(dataSource, UsageRows));
    }

    [Fact]
    public async Task CatchUpAsync_Should_LeaveTheSameRows_When_TheSameEventsAreAppliedTwice()
    {
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = Store(dataSource);
        await using var notifications = new EventNotifications(dataSource);
        var daemon = Daemon(store, notifications, Options(pageSize: 3));
        await AppendEveryOutcomeAsync(store, "a.example");
        await AppendEveryOutcomeAsync(store, "b.example");
        foreach (var projection in AsyncProjections().Select(a => new PageOnly(a)))
        {
            await daemon.CatchUpAsync(projection);
        }

        var once = (await RowsAsync(dataSource, PushLogRows), await RowsAsync(dataSource, UsageRows));

        // Again over the same rows, page by page and then replayed in the database.
        foreach (var inDatabase in new[] { false, true })
        {
            await using (var reset = dataSource.CreateCommand("update projection_checkpoints set position = 0"))
            {
                await reset.ExecuteNonQueryAsync();
            }

            foreach (var projection in AsyncProjections().Select(a => inDatabase ? a : new PageOnly(a)))
            {
                await daemon.CatchUpAsync(projection, pageSize: 5);
            }

            var twice = (await RowsAsync(dataSource, PushLogRows), await RowsAsync(dataSource, UsageRows));
            Assert.Equal(once.Item1, twice.Item1);
            Assert.Equal(once.Item2, twice.Item2);
        }

        Assert.Equal(18, once.Item1.Count);
        Assert.Equal(2, once.Item2.Count);
    }

    [Fact]
    public async Task RebuildAsync_Should_EqualTheIncrementalState_When_GatewayKeepsAppendingMeanwhile()
    {
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = Store(dataSource);
        await using var notifications = new EventNotifications(dataSource);
        var daemon = Daemon(store, notifications, Options(pageSize: 7));
        await daemon.StartAsync(CancellationToken.None);
        try
        {
            for (var i = 0; i < 4; i++)
            {
                await AppendEveryOutcomeAsync(store, $"d{i % 2}.example", ticks: 1_234_567 * i);
            }

            await WaitCaughtUpAsync(dataSource);
            var incremental = (await RowsAsync(dataSource, PushLogRows), await RowsAsync(dataSource, UsageRows));
            var progress = new List<(long Done, long Total)>();

            // A rebuild while the daemon runs and the gateway keeps appending.
            var appending = Task.Run(async () =>
            {
                for (var i = 0; i < 2; i++)
                {
                    await AppendEveryOutcomeAsync(store, "late.example", ticks: 5);
                }
            });
            var results = await Rebuilder(store, Options()).RebuildAsync(null, new SyncProgress(progress));
            await appending;
            await WaitCaughtUpAsync(dataSource);

            Assert.Equal(["devices", "push_log"], results.Select(r => r.Name));
            Assert.True(results.All(r => r.Events > 0));
            Assert.NotEmpty(progress);
            Assert.Equal(progress[^1].Done, progress[^1].Total);
            var rebuilt = (await RowsAsync(dataSource, PushLogRows + " "), await RowsAsync(dataSource, UsageRows));
            Assert.Equal(incremental.Item1.Count + 18, rebuilt.Item1.Count);
            Assert.Equal(incremental.Item2.Append("(2026-11-01,late.example,18,4,4,4,2)").Order(StringComparer.Ordinal),
                rebuilt.Item2.Order(StringComparer.Ordinal));
            Assert.Empty(incremental.Item1.Except(rebuilt.Item1));
        }
        finally
        {
            await daemon.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Daemon_Should_ResumeWithoutLossOrDoubleCounting_When_APageFailsOrTheDaemonStopsMidway()
    {
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = Store(dataSource);
        await using var notifications = new EventNotifications(dataSource);
        var flaky = new FailingProjection(new PushLogProjection(), failOnCall: 3);
        // The first daemon is slow (50 ms a page), so stopping it after its first page stops it mid-way.
        var first = Daemon(store, notifications, Options(pageSize: 4), new SlowProjection(flaky));
        for (var i = 0; i < 3; i++)
        {
            await AppendEveryOutcomeAsync(store);
        }

        await first.StartAsync(CancellationToken.None);
        await WaitUntilAsync(async () => await CheckpointAsync(dataSource, "push_log") > 0, because: "a first page");
        await first.StopAsync(CancellationToken.None);
        var stoppedAt = await CheckpointAsync(dataSource, "push_log");

        var second = Daemon(store, notifications, Options(pageSize: 4), flaky);
        await second.StartAsync(CancellationToken.None);
        try
        {
            await WaitCaughtUpAsync(dataSource);
        }
        finally
        {
            await second.StopAsync(CancellationToken.None);
        }

        Assert.True(flaky.Failures >= 1);
        Assert.True(stoppedAt < await HighWaterAsync(dataSource), "the first daemon stopped before the end");
        Assert.Equal(["(2026-11-01,a.example,27,6,6,6,3)"], await RowsAsync(dataSource, UsageRows));
        Assert.Equal(27L, await ScalarAsync<long>(dataSource, "select count(*) from push_log"));
        var status = await new ProjectionStatus(dataSource, AsyncProjections()).GetStatusAsync();
        var pushLog = Assert.Single(status, s => s.Name == "push_log");
        Assert.Equal("PostgresException 22012", pushLog.LastError);
        Assert.NotNull(pushLog.LastErrorAt);
        Assert.Equal(0, pushLog.Lag);
    }

    [Fact]
    public async Task Daemon_Should_WaitForASlowTransactionAndPassARolledBackOne_When_PositionsHaveGaps()
    {
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = Store(dataSource);
        await using var notifications = new EventNotifications(dataSource);
        var device = Guid.CreateVersion7();
        await store.AppendAsync(device, "device", ExpectedVersion.Any, [Registered(device), Requested(device)]);
        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        await store.EnsurePushPartitionsAsync(today, today.AddDays(1));

        // A rolled-back append burns positions: a push refused for an unknown device.
        var unknown = Guid.CreateVersion7();
        await Assert.ThrowsAsync<AppendRejectedException>(() => store.AppendAsync(unknown, "device", ExpectedVersion.Any, [Requested(unknown)]));

        // A slow writer takes its xid and a position, then commits only later.
        var latePush = Guid.CreateVersion7();
        await using var slow = await dataSource.OpenConnectionAsync();
        await using var tx = await slow.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand("""
            select pg_current_xact_id();
            insert into push_events (seq, stream_id, version, type, data, "timestamp")
            values (nextval('event_seq'), @device, 100, 'push_requested.v1',
                    jsonb_build_object('push_id', @push, 'device_id', @device, 'domain', 'late.example',
                                       'requested_at', @at, 'expires_at', @at), now())
            """, slow, tx))
        {
            insert.Parameters.AddWithValue("device", device);
            insert.Parameters.AddWithValue("push", latePush);
            insert.Parameters.AddWithValue("at", T0.ToString("O"));
            await insert.ExecuteNonQueryAsync();
        }

        await store.AppendAsync(device, "device", ExpectedVersion.Any, [Requested(device, "after.example")]);
        var daemon = Daemon(store, notifications, Options(pageSize: 1));
        await daemon.StartAsync(CancellationToken.None);
        try
        {
            await WaitUntilAsync(async () => await CheckpointAsync(dataSource, "push_log") > 0, because: "the events before the gap");
            // The runners looked again and again (a step each), and still stop before the open transaction's position.
            var steps = daemon.Steps;
            await WaitUntilAsync(() => Task.FromResult(daemon.Steps >= steps + 10), because: "the daemon tried to go on");
            Assert.Equal(0L, await ScalarAsync<long>(dataSource, "select count(*) from push_log where domain = 'after.example'"));

            await tx.CommitAsync();
            await WaitCaughtUpAsync(dataSource);
        }
        finally
        {
            await daemon.StopAsync(CancellationToken.None);
        }

        Assert.Equal(
            ["(example.org)", "(late.example)", "(after.example)"],
            await RowsAsync(dataSource, "select domain from push_log order by domain = 'after.example', domain"));
        Assert.Equal(3L, await ScalarAsync<long>(dataSource, "select sum(pushes)::bigint from domain_usage"));
    }

    [Fact]
    public async Task Daemon_Should_ApplyOnOneNodeOnlyAndFailOver_When_TwoDaemonsShareTheDatabase()
    {
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = Store(dataSource);
        await using var notificationsA = new EventNotifications(dataSource);
        await using var notificationsB = new EventNotifications(dataSource);
        var a = Daemon(store, notificationsA, Options(pageSize: 3));
        var b = Daemon(store, notificationsB, Options(pageSize: 3));
        await a.StartAsync(CancellationToken.None);
        await b.StartAsync(CancellationToken.None);
        try
        {
            var device = Guid.CreateVersion7();
            await store.AppendAsync(device, "device", ExpectedVersion.Any, [Registered(device)]);
            await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => store.AppendAsync(device, "device", ExpectedVersion.Any, [Requested(device)])));
            await WaitCaughtUpAsync(dataSource);
            await WaitUntilAsync(() => Task.FromResult(a.IsLeader || b.IsLeader), because: "a leader");
            Assert.False(a.IsLeader && b.IsLeader);
            Assert.Equal(30L, await ScalarAsync<long>(dataSource, "select pushes from domain_usage"));

            var (leader, follower) = a.IsLeader ? (a, b) : (b, a);
            await leader.StopAsync(CancellationToken.None);
            await WaitUntilAsync(() => Task.FromResult(follower.IsLeader), because: "the follower to take over");
            await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => store.AppendAsync(device, "device", ExpectedVersion.Any, [Requested(device)])));
            await WaitCaughtUpAsync(dataSource);

            Assert.Equal(50L, await ScalarAsync<long>(dataSource, "select pushes from domain_usage"));
            Assert.Equal(50L, await ScalarAsync<long>(dataSource, "select count(*) from push_log"));
        }
        finally
        {
            await a.StopAsync(CancellationToken.None);
            await b.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task GetStatusAsync_Should_ReportLag_When_TheDaemonIsBehindAndZeroWhenCaughtUp()
    {
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = Store(dataSource);
        await using var notifications = new EventNotifications(dataSource);
        var status = new ProjectionStatus(dataSource, AsyncProjections());
        var device = Guid.CreateVersion7();
        var last = await store.AppendAsync(device, "device", ExpectedVersion.Any, [Registered(device), Requested(device), Requested(device)]);

        var behind = await status.GetStatusAsync();
        foreach (var projection in AsyncProjections())
        {
            await Daemon(store, notifications, Options()).CatchUpAsync(projection);
        }

        var caughtUp = await status.GetStatusAsync();

        Assert.Equal(["devices", "push_log"], behind.Select(s => s.Name));
        Assert.Equal(new ProjectionStatusRow("devices", "inline", last.LastSequence, last.LastSequence, 0, null, null, null), behind[0]);
        Assert.All(behind.Skip(1), s => Assert.Equal(last.LastSequence, s.Lag));
        Assert.All(caughtUp, s => Assert.Equal(0, s.Lag));
        Assert.All(caughtUp, s => Assert.Equal(last.LastSequence, s.Position));
    }

    [Fact]
    public async Task PurgeAsync_Should_DeletePushLogsOlderThanTheCutoff_When_RetentionRuns()
    {
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = Store(dataSource);
        await using var notifications = new EventNotifications(dataSource);
        var device = Guid.CreateVersion7();
        await store.AppendAsync(device, "device", ExpectedVersion.Any, [Registered(device)]);
        foreach (var day in new[] { 0, 1, 15, 16 })
        {
            await store.AppendAsync(device, "device", ExpectedVersion.Any, [Requested(device, at: T0.AddDays(day))]);
        }

        foreach (var projection in AsyncProjections())
        {
            await Daemon(store, notifications, Options()).CatchUpAsync(projection);
        }

        var retention = new PushLogRetention(dataSource);
        var cutoff = T0.AddDays(16).AddDays(-14);

        var dry = await retention.PurgeAsync(cutoff, batchSize: 1, dryRun: true);
        var done = await retention.PurgeAsync(cutoff, batchSize: 1, dryRun: false);

        Assert.Equal(new PushLogPurgeResult(2, 2), dry);
        Assert.Equal(dry, done);
        Assert.Equal(2L, await ScalarAsync<long>(dataSource, "select count(*) from push_log"));
        // The counters of the days that started before the cutoff (days 0 and 1) went with them.
        Assert.Equal(2L, await ScalarAsync<long>(dataSource, "select sum(pushes)::bigint from domain_usage"));
        Assert.Equal(0L, await ScalarAsync<long>(dataSource, "select count(*) from domain_usage where (day::timestamp at time zone 'UTC') < $1", cutoff));
    }

    private sealed class SyncProgress(List<(long, long)> into) : IProgress<(long Done, long Total)>
    {
        public void Report((long Done, long Total) value)
        {
            lock (into)
            {
                into.Add(value);
            }
        }
    }

    /// <summary>Hides a projection's in-database replay, so the daemon applies it page by page.</summary>
    private sealed class PageOnly(IAsyncProjection inner) : IAsyncProjection
    {
        public string Name => inner.Name;

        public IReadOnlyList<string> Tables => inner.Tables;

        public ValueTask ApplyAsync(NpgsqlBatch batch, IReadOnlyList<RecordedEvent> events, CancellationToken ct) =>
            inner.ApplyAsync(batch, events, ct);
    }

    private sealed class SlowProjection(IAsyncProjection inner) : IAsyncProjection
    {
        public string Name => inner.Name;

        public IReadOnlyList<string> Tables => inner.Tables;

        public async ValueTask ApplyAsync(NpgsqlBatch batch, IReadOnlyList<RecordedEvent> events, CancellationToken ct)
        {
            await Task.Delay(50, ct);
            await inner.ApplyAsync(batch, events, ct);
        }
    }

    /// <summary>A projection that makes its n-th page fail inside the page's transaction, as a crash mid-page would.</summary>
    private sealed class FailingProjection(IAsyncProjection inner, int failOnCall) : IAsyncProjection
    {
        private int _calls;

        public int Failures { get; private set; }

        public string Name => inner.Name;

        public IReadOnlyList<string> Tables => inner.Tables;

        public async ValueTask ApplyAsync(NpgsqlBatch batch, IReadOnlyList<RecordedEvent> events, CancellationToken ct)
        {
            await inner.ApplyAsync(batch, events, ct);
            if (Interlocked.Increment(ref _calls) == failOnCall)
            {
                Failures++;
                batch.BatchCommands.Add(new NpgsqlBatchCommand("select 1 / 0"));
            }
        }
    }
}
