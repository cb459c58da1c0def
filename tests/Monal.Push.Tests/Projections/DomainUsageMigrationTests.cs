using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Schema;
using Monal.Push.Tests.Fixtures;
using Npgsql;
using static Monal.Push.Tests.Projections.ProjectionKit;

namespace Monal.Push.Tests.Projections;

/// <summary>
/// Upgrading across 0012 (domain_usage folded by the push log's statements, domain_usage_pushes dropped): the
/// counters left by the old domain_usage projection, ahead of the push log or behind it, end exactly as if one
/// projection had always kept both, once the push log has caught up; pushes only the old table knew (their device
/// erased before the push log got to them) stay counted.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class DomainUsageMigrationTests
{
    private const string UsageRows = "select * from domain_usage order by day, domain";

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Migration0012_Should_LeaveExactCounters_When_TheOldDomainUsageProjectionWasAheadOrBehind(bool usageAhead)
    {
        await using var dataSource = NpgsqlDataSource.Create(await TestDatabase.CreateEmptyDatabaseAsync());
        var migrator = new SchemaMigrator(dataSource, NullLogger<SchemaMigrator>.Instance);
        var all = MigrationSource.Embedded();
        await migrator.MigrateAsync([.. all.Where(m => string.CompareOrdinal(m.Name, "0012") < 0)]);
        await using var store = Store(dataSource);
        await using var notifications = new EventNotifications(dataSource);
        var daemon = Daemon(store, notifications, Options(pageSize: 2, rangeSize: 2));

        var device = Guid.CreateVersion7();
        await store.AppendAsync(device, "device", ExpectedVersion.Any, [Registered(device)]);
        Guid a1 = Guid.CreateVersion7(), a2 = Guid.CreateVersion7(), a3 = Guid.CreateVersion7(), erased = Guid.CreateVersion7();
        var q = (await store.AppendAsync(device, "device", ExpectedVersion.Any, [Requested(device, "a.example", a1)])).LastSequence;
        await store.AppendAsync(device, "device", ExpectedVersion.Any, [new PushDelivered(a1, device, a1, T0.AddSeconds(1), 10)]);
        await store.AppendAsync(device, "device", ExpectedVersion.Any, [Requested(device, "a.example", a2)]);

        // The push log (the new projection's statements, which at 0011 also add to domain_usage: replaced below by the
        // old projection's state) applies everything so far.
        var p = await daemon.CatchUpAsync(new Monal.Push.Projections.PushLog.PushLogProjection());
        await store.AppendAsync(device, "device", ExpectedVersion.Any, [new PushFailed(a2, device, 400, "BadPriority", false, T0.AddSeconds(2))]);
        await store.AppendAsync(device, "device", ExpectedVersion.Any, [Requested(device, "a.example", a3)]);
        var high = (await store.AppendAsync(device, "device", ExpectedVersion.Any,
            [new PushDelivered(a3, device, a3, T0.AddSeconds(3), 10)])).LastSequence;

        // What the old domain_usage projection had left: at the end of the log (ahead of the push log), or after a1's
        // request only (behind it); either way also a push of a device erased before the push log reached it.
        string[] known = usageAhead
            ? [$"('{a1}', 'a.example', 'delivered')", $"('{a2}', 'a.example', 'failed')", $"('{a3}', 'a.example', 'delivered')"]
            : [$"('{a1}', 'a.example', 'pending')"];
        await ExecAsync(dataSource, $"""
            delete from domain_usage;
            insert into domain_usage_pushes (push_id, day, domain, requested_at, expires_at, outcome)
            select push_id::uuid, '2026-11-01', domain, '2026-11-01 12:00Z', '2026-11-01 13:00Z', outcome
            from (values {string.Join(", ", known)}, ('{erased}', 'gone.example', 'delivered')) v(push_id, domain, outcome);
            insert into domain_usage (day, domain, pushes, delivered, failed)
            select day, domain, count(*), count(*) filter (where outcome = 'delivered'), count(*) filter (where outcome = 'failed')
            from domain_usage_pushes group by day, domain;
            insert into projection_checkpoints (name, position) values ('domain_usage', {(usageAhead ? high : q)});
            """);
        Assert.True(usageAhead ? high > p : q < p);

        Assert.Equal("0012_domain_usage_from_push_log.sql", (await migrator.MigrateAsync(all))[0]);
        await daemon.CatchUpAsync(new Monal.Push.Projections.PushLog.PushLogProjection());

        Assert.Equal(
            ["(2026-11-01,a.example,3,2,1,0,0)", "(2026-11-01,gone.example,1,1,0,0,0)"],
            await RowsAsync(dataSource, UsageRows));
        Assert.True(await ScalarAsync<bool>(dataSource, "select to_regclass('domain_usage_pushes') is null"));
        Assert.Equal(0L, await ScalarAsync<long>(dataSource, "select count(*) from projection_checkpoints where name = 'domain_usage'"));
        Assert.Equal(high, await CheckpointAsync(dataSource, "push_log"));
    }

    private static async Task ExecAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var cmd = dataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }
}
