using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Schema;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Tests.Fixtures;
using Npgsql;
using static Monal.Push.Tests.Ledger.EventStoreAppendTests;

namespace Monal.Push.Tests.Ledger;

/// <summary>
/// The retention purge of push events: exact evidence without reading the dropped rows (push_event_days), and no
/// blocking of appends while a partition is removed. Blocking is detected with a lock_timeout, never with timings.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class PushPurgeTests
{
    private static readonly DateTimeOffset Start = new(2042, 3, 1, 6, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task PurgePushEventsAsync_Should_ReportTheExactCount_When_StreamsWereErasedAndAppendsRolledBack()
    {
        var clock = new ManualClock(Start);
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var grouped = TestLedger.Store(dataSource, clock: clock);
        await using var alone = TestLedger.Store(dataSource, groupCommit: false, clock: clock);
        var a = Guid.CreateVersion7();
        var b = Guid.CreateVersion7();
        await grouped.AppendAsync(a, "device", ExpectedVersion.Any, [Registered(a), Requested(a), Requested(a)]);
        await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => grouped.AppendAsync(b, "device", ExpectedVersion.Any, [Requested(b)])));
        clock.Advance(TimeSpan.FromDays(1));
        await alone.AppendAsync(a, "device", ExpectedVersion.Any, [Requested(a)]);
        await alone.AppendAsync(b, "device", ExpectedVersion.Any, [Requested(b), Requested(b)]);
        // A refused append rolls back, and its count with it.
        await Assert.ThrowsAsync<StreamVersionConflictException>(() =>
            alone.AppendAsync(b, "device", ExpectedVersion.Exactly(1), [Requested(b), Requested(b)]));
        // Erasing a removes its 3 push events of both days from the counts.
        Assert.Equal(4, await alone.DeleteStreamAsync(a));
        clock.Advance(TimeSpan.FromDays(20));
        await alone.AppendAsync(b, "device", ExpectedVersion.Any, [Requested(b)]);
        var cutoff = clock.GetUtcNow().AddDays(-14);
        var older = (long)(await Scalar(dataSource, "select count(*) from push_events where \"timestamp\" < $1", cutoff))!;
        Assert.Equal(22L, older);
        Assert.Equal(0L, await Scalar(dataSource, """
            select count(*) from (
                select ("timestamp" at time zone 'UTC')::date as day, count(*) as n from push_events group by 1) r
            full join (select day, sum(events) as n from push_event_days group by 1) c using (day)
            where r.n is distinct from c.n
            """));

        var result = await grouped.PurgePushEventsAsync(cutoff, batchSize: 100, dryRun: false);

        Assert.Equal(new PurgeResult(2, older), result);
        Assert.Equal(0L, await Scalar(dataSource, "select count(*) from push_events where \"timestamp\" < $1", cutoff));
        Assert.Equal(0L, await Scalar(dataSource, "select count(*) from push_event_days where day < $1", DateOnly.FromDateTime(cutoff.UtcDateTime)));
        Assert.Equal(1L, await Scalar(dataSource, "select sum(events)::bigint from push_event_days"));
    }

    [Fact]
    public async Task PurgePushEventsAsync_Should_SubtractTheTrimmedRows_When_TheCutoffFallsInsideADay()
    {
        var clock = new ManualClock(Start);
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = TestLedger.Store(dataSource, groupCommit: false, clock: clock);
        var id = Guid.CreateVersion7();
        foreach (var hour in new[] { 0, 1, 2, 10, 11 })
        {
            clock.Set(Start.AddHours(hour));
            await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]);
        }

        var result = await store.PurgePushEventsAsync(Start.AddHours(5), batchSize: 2, dryRun: false);

        Assert.Equal(new PurgeResult(0, 3), result);
        Assert.Equal(2L, await Scalar(dataSource, "select sum(events)::bigint from push_event_days where day = $1", DateOnly.FromDateTime(Start.UtcDateTime)));
        Assert.Equal(2L, await Scalar(dataSource, "select count(*) from push_events"));
    }

    [Fact]
    public async Task PurgePushEventsAsync_Should_LetAppendsThrough_When_ItWaitsForAnOlderTransaction()
    {
        var (dataSource, store, appender, cutoff) = await OldDayAndTodayAsync(PartitionRemoval.DetachConcurrently);
        await using var _ = dataSource;
        await using var __ = store;
        await using var ___ = appender;
        await using var holder = await dataSource.OpenConnectionAsync();
        await using var tx = await holder.BeginTransactionAsync();
        await using (var read = new NpgsqlCommand("select count(*) from push_events", holder, tx))
        {
            await read.ExecuteScalarAsync(); // a long report: ACCESS SHARE on push_events and every partition
        }

        var purge = store.PurgePushEventsAsync(cutoff, 1000, dryRun: false);
        await WaitForLockWaitAsync(dataSource);
        Assert.Equal(0L, await Scalar(dataSource, """
            select count(*) from pg_locks where relation = 'push_events'::regclass and mode = 'AccessExclusiveLock'
            """));

        var id = Guid.CreateVersion7();
        await appender.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]); // lock_timeout 5 s: throws if blocked

        Assert.False(purge.IsCompleted);
        await tx.CommitAsync();
        Assert.Equal(new PurgeResult(1, 3), await purge);
        Assert.IsType<DBNull>(await Scalar(dataSource, "select to_regclass('push_events_20420301')::text"));
        Assert.Equal(2L, await Scalar(dataSource, "select count(*) from push_events"));
    }

    [Fact]
    public async Task PurgePushEventsAsync_Should_BlockAppends_When_PartitionsAreDroppedPlainly()
    {
        var (dataSource, store, appender, cutoff) = await OldDayAndTodayAsync(PartitionRemoval.Drop, lockTimeoutMs: 500);
        await using var _ = dataSource;
        await using var __ = store;
        await using var ___ = appender;
        await using var holder = await dataSource.OpenConnectionAsync();
        await using var tx = await holder.BeginTransactionAsync();
        await using (var read = new NpgsqlCommand("select count(*) from push_events", holder, tx))
        {
            await read.ExecuteScalarAsync();
        }

        var purge = store.PurgePushEventsAsync(cutoff, 1000, dryRun: false);
        await WaitForLockWaitAsync(dataSource);

        var id = Guid.CreateVersion7();
        var blocked = await Assert.ThrowsAsync<PostgresException>(() => appender.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]));
        Assert.Equal(PostgresErrorCodes.LockNotAvailable, blocked.SqlState);

        await tx.CommitAsync();
        Assert.Equal(new PurgeResult(1, 3), await purge);
    }

    [Fact]
    public async Task PurgePushEventsAsync_Should_FinishRemovals_When_AnEarlierRunWasInterrupted()
    {
        var clock = new ManualClock(Start);
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = TestLedger.Store(dataSource, groupCommit: false, clock: clock);
        var id = Guid.CreateVersion7();
        for (var day = 0; day < 3; day++)
        {
            clock.Set(Start.AddDays(day));
            await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id), Requested(id)]);
        }

        // Day 0: detached but not dropped (a crash between the two steps).
        await Scalar(dataSource, "alter table push_events detach partition push_events_20420301");
        // Day 1: a concurrent detach cancelled while it waited, which leaves the partition "detach pending".
        await using (var holder = await dataSource.OpenConnectionAsync())
        {
            await using var tx = await holder.BeginTransactionAsync();
            await using (var read = new NpgsqlCommand("select count(*) from push_events", holder, tx))
            {
                await read.ExecuteScalarAsync();
            }

            await using var detacher = await dataSource.OpenConnectionAsync();
            await using var command = new NpgsqlCommand("alter table push_events detach partition push_events_20420302 concurrently", detacher);
            var detach = command.ExecuteNonQueryAsync();
            await WaitForLockWaitAsync(dataSource);
            await Scalar(dataSource, "select pg_cancel_backend($1)", detacher.ProcessID);
            await Assert.ThrowsAsync<PostgresException>(() => detach);
            await tx.CommitAsync();
        }

        Assert.Equal(true, await Scalar(dataSource, "select inhdetachpending from pg_inherits where inhrelid = 'push_events_20420302'::regclass"));
        clock.Set(Start.AddDays(20));

        var result = await store.PurgePushEventsAsync(Start.AddDays(2), 1000, dryRun: false);

        Assert.Equal(new PurgeResult(2, 4), result);
        Assert.IsType<DBNull>(await Scalar(dataSource, "select to_regclass('push_events_20420301')::text"));
        Assert.IsType<DBNull>(await Scalar(dataSource, "select to_regclass('push_events_20420302')::text"));
        Assert.Equal(2L, await Scalar(dataSource, "select count(*) from push_events"));
    }

    // Three push events on 2042-03-01, one twenty days later ("today", its partition already there), the store to
    // purge with, and an appender whose connections give up on a lock after lockTimeoutMs.
    private static async Task<(NpgsqlDataSource DataSource, EventStore Store, EventStore Appender, DateTimeOffset Cutoff)> OldDayAndTodayAsync(
        PartitionRemoval removal, int lockTimeoutMs = 5000)
    {
        var clock = new ManualClock(Start);
        var connectionString = await TestDatabase.CreateEmptyDatabaseAsync();
        var dataSource = NpgsqlDataSource.Create(connectionString);
        await new SchemaMigrator(dataSource, NullLogger<SchemaMigrator>.Instance).MigrateAsync(MigrationSource.Embedded());
        var options = new LedgerOptions { GroupCommit = false, PartitionRemoval = removal };
        var store = new EventStore(dataSource, clock, [], [], Options.Create(options), NullLogger<EventStore>.Instance);
        var id = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id), Requested(id), Requested(id)]);
        clock.Set(Start.AddDays(20));
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]);
        var limited = new NpgsqlConnectionStringBuilder(connectionString) { Options = $"-c lock_timeout={lockTimeoutMs}" };
        // Not disposed: the run's cluster goes away with the test process.
        var appender = TestLedger.Store(NpgsqlDataSource.Create(limited.ConnectionString), groupCommit: false, clock: clock);
        return (dataSource, store, appender, Start.AddDays(6));
    }

    private static async Task WaitForLockWaitAsync(NpgsqlDataSource dataSource)
    {
        for (var i = 0; i < 600; i++)
        {
            if ((long)(await Scalar(dataSource,
                    "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'"))! > 0)
            {
                return;
            }

            await Task.Delay(50);
        }

        Assert.Fail("the purge never waited for the older transaction");
    }
}
