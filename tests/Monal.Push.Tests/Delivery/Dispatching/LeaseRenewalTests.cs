using Monal.Push.Delivery.Dispatching;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Events;
using Monal.Push.Tests.Fixtures;
using Npgsql;
using NpgsqlTypes;

namespace Monal.Push.Tests.Delivery.Dispatching;

[Trait("Category", "Postgres")]
public sealed class LeaseRenewalTests
{
    [Fact]
    public async Task Renewal_Should_SkipWithoutWaiting_When_AnOutcomeAppendHoldsOneOfTheRows()
    {
        await using var h = await DispatchHarness.CreateAsync();
        var now = DateTimeOffset.UtcNow;
        var ids = Enumerable.Range(0, 3).Select(_ => Guid.CreateVersion7()).ToArray();
        await using (var insert = h.DataSource.CreateCommand("""
            insert into push_queue (push_id, device_id, requested_at, not_before, expires_at, next_attempt_at, claimed_by, claimed_until)
            select id, gen_random_uuid(), $2, $2, $2 + interval '1 day', $2, 'node-a', $2 + interval '1 minute' from unnest($1::uuid[]) id
            """))
        {
            insert.Parameters.Add(new() { Value = ids, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
            insert.Parameters.Add(new() { Value = now, NpgsqlDbType = NpgsqlDbType.TimestampTz });
            await insert.ExecuteNonQueryAsync();
        }

        // An outcome append's transaction finishes the second push and has not committed yet.
        await using var appender = await h.DataSource.OpenConnectionAsync();
        await using var tx = await appender.BeginTransactionAsync();
        await using (var finish = new NpgsqlCommand("select monal_push_queue_finish($1)", appender, tx))
        {
            finish.Parameters.Add(new() { Value = new[] { ids[1] }, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
            await finish.ExecuteNonQueryAsync();
        }

        // The renewal neither waits for that row (a wait that could end in a deadlock) nor loses the others.
        var renewed = await RenewAsync(h.DataSource, now.AddMinutes(5));

        Assert.Equal(new[] { ids[0], ids[2] }.Order(), renewed.Order());
        await tx.RollbackAsync();
        var (_, until, _) = await h.QueueRowAsync(ids[0]);
        Assert.True(until > now.AddMinutes(4));
    }

    [Fact]
    public async Task Renewal_Should_RenewEveryClaim_When_ItsConnectionCachedAPlanWhileTheQueueWasEmpty()
    {
        await using var h = await DispatchHarness.CreateAsync();
        // The queue is empty and its statistics say so; the connection prepares every statement at its first use and
        // keeps one generic plan for it, as a pooled connection does after five executions.
        await using (var vacuum = h.DataSource.CreateCommand("vacuum analyze push_queue"))
        {
            await vacuum.ExecuteNonQueryAsync();
        }

        // The run's credentials (the harness's data source does not give its password back), the harness's database.
        var cached = new NpgsqlConnectionStringBuilder(await TestDatabase.ConnectionStringAsync())
        {
            Database = new NpgsqlConnectionStringBuilder(h.DataSource.ConnectionString).Database,
            Options = "-c plan_cache_mode=force_generic_plan",
            MaxAutoPrepare = 10,
            AutoPrepareMinUsages = 1,
            MaxPoolSize = 1,
        };
        await using var dataSource = NpgsqlDataSource.Create(cached.ConnectionString);
        var now = DateTimeOffset.UtcNow;
        Assert.Empty(await RenewAsync(dataSource, now.AddMinutes(1)));

        // Then a burst: 10,000 claims of this node among 20,000 rows.
        await using (var fill = h.DataSource.CreateCommand("""
            insert into push_queue (push_id, device_id, requested_at, not_before, expires_at, next_attempt_at, claimed_by, claimed_until)
            select gen_random_uuid(), gen_random_uuid(), $1, $1, $1 + interval '1 day', $1 + interval '1 minute',
                   case when i % 2 = 0 then 'node-a' end, case when i % 2 = 0 then $1 + interval '1 minute' end
            from generate_series(1, 20000) i
            """))
        {
            fill.Parameters.Add(new() { Value = now, NpgsqlDbType = NpgsqlDbType.TimestampTz });
            await fill.ExecuteNonQueryAsync();
        }

        // A plan made for the empty queue rescans the 10,000 claims for each of the 20,000 rows (45 s here) while it
        // holds their locks; planned for the queue of the moment, the renewal is over long before the timeout.
        var renewed = await RenewAsync(dataSource, now.AddMinutes(5));

        Assert.Equal(10_000, renewed.Count);
    }

    [Fact]
    public async Task Claims_Should_KeepTheirRowsOutOfThePollersRange_When_HeldRenewedAndHandedBack()
    {
        await using var h = await DispatchHarness.CreateAsync();
        // Two sends at a time, both stalled: two more pushes wait claimed in memory. A 3 s lease is renewed every second.
        var a = await h.Node(o => o.MaxInFlight = 2).StartAsync();

        // The first push opens the connection to Apple.
        var (first, _) = await h.AddDeviceAsync();
        var warmUp = await DispatchHarness.RequestAsync(a.Store, first);
        Assert.IsType<PushDelivered>(Assert.Single(await DispatchHarness.WaitForFinalAsync(a.Store, first, warmUp)));
        h.Mock.StallNext(2);
        for (var i = 0; i < 4; i++)
        {
            var (device, _) = await h.AddDeviceAsync();
            await DispatchHarness.RequestAsync(a.Store, device);
        }

        await h.Mock.WaitForStalledAsync(2, DispatchHarness.Patience);
        var claimed = await RowsAsync(h);
        Assert.Equal(4, claimed.Count);
        // Held: the poller's range (next_attempt_at <= now) reaches a row only when its lease has run out.
        Assert.All(claimed, r => Assert.Equal(r.ClaimedUntil, r.NextAttemptAt));

        var firstLease = claimed.Max(r => r.ClaimedUntil!.Value);
        var deadline = DateTimeOffset.UtcNow + DispatchHarness.Patience;
        IReadOnlyList<Row> renewed;
        do
        {
            await Task.Delay(100);
            renewed = await RowsAsync(h);
        }
        while (renewed.Any(r => r.ClaimedUntil <= firstLease) && DateTimeOffset.UtcNow < deadline);

        Assert.All(renewed, r => Assert.True(r.ClaimedUntil > firstLease, "renewed"));
        Assert.All(renewed, r => Assert.Equal(r.ClaimedUntil, r.NextAttemptAt));

        // Handed back on a stop: due again at once, from the time it was first due.
        var stopping = a.StopAsync();
        await a.WaitUntilStoppingAsync();
        h.Mock.ReleaseStalled();
        await stopping;
        var handedBack = await RowsAsync(h);
        Assert.Equal(2, handedBack.Count);
        Assert.All(handedBack, r =>
        {
            Assert.Null(r.ClaimedBy);
            Assert.Null(r.ClaimedUntil);
            Assert.Equal(r.NotBefore, r.NextAttemptAt);
        });
    }

    private static async Task<List<Guid>> RenewAsync(NpgsqlDataSource dataSource, DateTimeOffset until)
    {
        await using var batch = QueueStatement.Create(dataSource, PushDispatcher.RenewSql, out var renew);
        batch.Timeout = 10;
        renew.Parameters.Add(new() { Value = until, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        renew.Parameters.Add(new() { Value = "node-a" });
        var renewed = new List<Guid>();
        await using var reader = await TransactionSetting.ReadAsync(batch, CancellationToken.None);
        while (await reader.ReadAsync())
        {
            renewed.Add(reader.GetGuid(0));
        }

        return renewed;
    }

    private sealed record Row(string? ClaimedBy, DateTimeOffset? ClaimedUntil, DateTimeOffset NextAttemptAt, DateTimeOffset NotBefore);

    private static async Task<IReadOnlyList<Row>> RowsAsync(DispatchHarness h)
    {
        await using var cmd = h.DataSource.CreateCommand("select claimed_by, claimed_until, next_attempt_at, not_before from push_queue");
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<Row>();
        while (await reader.ReadAsync())
        {
            rows.Add(new Row(
                reader.IsDBNull(0) ? null : reader.GetString(0),
                reader.IsDBNull(1) ? null : reader.GetFieldValue<DateTimeOffset>(1),
                reader.GetFieldValue<DateTimeOffset>(2),
                reader.GetFieldValue<DateTimeOffset>(3)));
        }

        return rows;
    }
}
