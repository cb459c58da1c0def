using Monal.Push.Delivery.Dispatching;
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
        await using (var finish = new Npgsql.NpgsqlCommand("select monal_push_queue_finish($1)", appender, tx))
        {
            finish.Parameters.Add(new() { Value = new[] { ids[1] }, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
            await finish.ExecuteNonQueryAsync();
        }

        // The renewal neither waits for that row (a wait that could end in a deadlock) nor loses the others.
        await using var renew = h.DataSource.CreateCommand(PushDispatcher.RenewSql);
        renew.CommandTimeout = 5;
        renew.Parameters.Add(new() { Value = now.AddMinutes(5), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        renew.Parameters.Add(new() { Value = "node-a" });
        var renewed = new List<Guid>();
        await using (var reader = await renew.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                renewed.Add(reader.GetGuid(0));
            }
        }

        Assert.Equal(new[] { ids[0], ids[2] }.Order(), renewed.Order());
        await tx.RollbackAsync();
        var (_, until, _) = await h.QueueRowAsync(ids[0]);
        Assert.True(until > now.AddMinutes(4));
    }
}
