using Microsoft.Extensions.Options;
using Monal.Push.Purge.Erasing;
using Monal.Push.Purge.Scheduling;
using Npgsql;

namespace Monal.Push.Purge.DeletingInvalidTokens;

/// <summary>
/// Erases every device whose registration has ended (docs/product.md, the privacy promises): tokens Apple declared
/// invalid (410; "deleted, unless the device registered again after Apple's timestamp"), tokens Apple rejected for
/// their topic or environment (400 BadDeviceToken / DeviceTokenNotForTopic), and devices that unregistered (v1
/// unregister, HTTP or ad-hoc). Each is crypto-shredded (its data key, so every copy of its token and secret becomes
/// unreadable) and hard-deleted by the hourly run at the latest. Candidates come from the inline devices read model,
/// which is written in the append's own transaction and so never lags; the same condition is checked again under the
/// stream's lock, so a device that registered again meanwhile is left alone. It also deletes the keyed ids of dead
/// stateless tokens (dead_tokens) once they are older than Retention:PushLog: they exist only so that a publish
/// cannot re-create such a device (answered item-not-found, which makes the XMPP server drop the registration), and
/// the data-key generations a replaced token left behind when a renewal was interrupted, and data keys whose device's
/// first append failed (orphaned: no stream refers to them).
/// </summary>
public sealed class InvalidTokenSweeper(
    NpgsqlDataSource dataSource, DeviceEraser eraser, IOptions<RetentionOptions> options, TimeProvider clock)
    : IRetentionTask
{
    // A stateless device's registered_at is its first publish, not a registration by the device, so only a
    // registered device can outlive Apple's timestamp by registering again (the projection's rule, repeated so a row
    // folded by an older projection cannot make us erase a device that registered again).
    private const string EndedSql = """
        (invalidated_at is not null
            and (mode = 'stateless' or greatest(registered_at, renewed_at) <= coalesce(apple_timestamp, invalidated_at)))
        or rejected_at is not null or unregistered_at is not null
        """;

    private const string CandidatesSql = $"""
        select device_id, least(invalidated_at, rejected_at, unregistered_at) as ended_at,
               case when invalidated_at is not null then 'invalid-token'
                    when rejected_at is not null then 'rejected-token' else 'unregistered' end
        from devices
        where ({EndedSql}) and least(invalidated_at, rejected_at, unregistered_at) <= $1
        order by 2, device_id
        """;

    private const string StillEndedSql = $"select ({EndedSql}) from devices where device_id = $1";

    /// <inheritdoc />
    public string Job => RetentionJobNames.InvalidTokens;

    public DateTimeOffset CutoffFor(DateTimeOffset now) => now;

    public async Task RunAsync(DateTimeOffset cutoff, bool dryRun, IDictionary<string, long> deleted, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(deleted);
        var batch = Math.Max(1, options.Value.BatchSize);
        var candidates = await CandidatesAsync(cutoff, ct);
        deleted["devices_erased"] = 0;
        foreach (var chunk in candidates.Chunk(batch))
        {
            foreach (var (deviceId, _, cause) in chunk)
            {
                ct.ThrowIfCancellationRequested();
                var receipt = await eraser.EraseDeviceAsync(deviceId, cause, dryRun, ct, onlyIf: StillEndedSql);
                if (!receipt.FoundAnything)
                {
                    continue;
                }

                deleted["devices_erased"]++;
                foreach (var (category, count) in receipt.Deleted)
                {
                    deleted[category] = deleted.TryGetValue(category, out var sum) ? sum + count : count;
                }
            }
        }

        deleted[ReadModelTables.DeadTokens] = await PurgeDeadTokensAsync(clock.GetUtcNow() - options.Value.PushLog, dryRun, ct);
        deleted["superseded_data_keys"] = await RetireDataKeysAsync(dryRun, ct);
        deleted["orphaned_data_keys"] = await DeleteOrphanedKeysAsync(clock.GetUtcNow() - OrphanedKeyAge, dryRun, ct);
    }

    /// <summary>
    /// How old a data key without a stream must be before it is deleted. A publish or registration makes the key a
    /// moment before it appends the device's first events; a key still without a stream after this long belongs to an
    /// append that failed, and encrypts nothing that was stored (the process forgets a key whose append failed, so a
    /// retry makes a fresh one).
    /// </summary>
    public static readonly TimeSpan OrphanedKeyAge = TimeSpan.FromHours(1);

    private async Task<long> DeleteOrphanedKeysAsync(DateTimeOffset cutoff, bool dryRun, CancellationToken ct)
    {
        const string orphaned = "k.created_at < $1 and not exists (select 1 from streams s where s.id = k.device_id)";
        await using var cmd = dataSource.CreateCommand(dryRun
            ? $"select count(*) from data_keys k where {orphaned}"
            : $"with d as (delete from data_keys k where {orphaned} returning 1) select count(*) from d");
        cmd.Parameters.Add(new() { Value = cutoff });
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    // Key generations a renewal superseded (a replaced token) but did not delete, because the process stopped between
    // its append and the retirement (migrations/0007, monal_retire_data_keys).
    private async Task<long> RetireDataKeysAsync(bool dryRun, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(dryRun
            ? "select count(*) from data_keys k join devices d using (device_id) where k.generation < monal_key_generation(d.encrypted_token)"
            : "select monal_retire_data_keys(null)");
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Devices awaiting erasure at <paramref name="cutoff"/>, oldest first, with the cause (the audit counts these too).</summary>
    public async Task<IReadOnlyList<(Guid DeviceId, DateTimeOffset EndedAt, string Cause)>> CandidatesAsync(DateTimeOffset cutoff, CancellationToken ct)
    {
        var list = new List<(Guid, DateTimeOffset, string)>();
        await using var cmd = dataSource.CreateCommand(CandidatesSql);
        cmd.Parameters.Add(new() { Value = cutoff });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            list.Add((reader.GetGuid(0), reader.GetFieldValue<DateTimeOffset>(1), reader.GetString(2)));
        }

        return list;
    }

    private async Task<long> PurgeDeadTokensAsync(DateTimeOffset cutoff, bool dryRun, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(dryRun
            ? "select count(*) from dead_tokens where dead_at < $1"
            : "with d as (delete from dead_tokens where dead_at < $1 returning 1) select count(*) from d");
        cmd.Parameters.Add(new() { Value = cutoff });
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
