using Microsoft.Extensions.Options;
using Monal.Push.Purge.Erasing;
using Monal.Push.Purge.Scheduling;
using Npgsql;

namespace Monal.Push.Purge.DeletingInvalidTokens;

/// <summary>
/// Erases every device whose token Apple declared invalid (PRODUCT.md: "A token that Apple reports as invalid is
/// deleted, unless the device registered again after Apple's timestamp"). Candidates come from the devices read
/// model (invalidated_at) and, so that nothing depends on a projection being deployed or caught up, from the
/// token_invalidated events themselves; a registration or renewal after Apple's timestamp keeps the device.
/// </summary>
public sealed class InvalidTokenSweeper(NpgsqlDataSource dataSource, DeviceEraser eraser, IOptions<RetentionOptions> options)
    : IRetentionTask
{
    private const string FromEventsSql = """
        with inv as (
            select stream_id, max(coalesce((data->>'apple_timestamp')::timestamptz, "timestamp")) as apple, max("timestamp") as at
            from events where type = 'token_invalidated.v1' and "timestamp" <= $1
            group by stream_id
        ), reg as (
            select stream_id, max(coalesce((data->>'renewed_at')::timestamptz, (data->>'registered_at')::timestamptz)) as last_reg
            from events where type in ('device_registered.v1', 'registration_renewed.v1')
            group by stream_id
        )
        select inv.stream_id, inv.at from inv left join reg using (stream_id)
        where reg.last_reg is null or reg.last_reg <= inv.apple
        """;

    private const string FromDevicesSql = """
        select device_id, invalidated_at from devices
        where invalidated_at is not null and invalidated_at <= $1
          and coalesce(renewed_at, registered_at, '-infinity') <= coalesce(apple_timestamp, invalidated_at)
          and coalesce(registered_at, '-infinity') <= coalesce(apple_timestamp, invalidated_at)
        """;

    /// <inheritdoc />
    public string Job => RetentionJobNames.InvalidTokens;

    public DateTimeOffset CutoffFor(DateTimeOffset now) => now;

    public async Task RunAsync(DateTimeOffset cutoff, bool dryRun, IDictionary<string, long> deleted, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(deleted);
        var batch = Math.Max(1, options.Value.BatchSize);
        var candidates = await CandidatesAsync(cutoff, ct);
        deleted["devices_erased"] = 0;
        foreach (var chunk in candidates.Select(c => c.DeviceId).Chunk(batch))
        {
            foreach (var deviceId in chunk)
            {
                ct.ThrowIfCancellationRequested();
                var receipt = await eraser.EraseDeviceAsync(deviceId, DeviceEraser.CauseInvalidToken, dryRun, ct);
                deleted["devices_erased"]++;
                foreach (var (category, count) in receipt.Deleted)
                {
                    deleted[category] = deleted.TryGetValue(category, out var sum) ? sum + count : count;
                }
            }
        }
    }

    /// <summary>Devices awaiting deletion at <paramref name="cutoff"/> (the audit counts these too).</summary>
    public async Task<IReadOnlyList<(Guid DeviceId, DateTimeOffset InvalidatedAt)>> CandidatesAsync(DateTimeOffset cutoff, CancellationToken ct)
    {
        var sql = FromEventsSql;
        if (await ReadModelTables.ExistsAsync(dataSource, ReadModelTables.Devices, ct))
        {
            sql = $"({FromEventsSql}) union ({FromDevicesSql})";
        }

        var ids = new Dictionary<Guid, DateTimeOffset>();
        await using var cmd = dataSource.CreateCommand(sql);
        cmd.Parameters.Add(new() { Value = cutoff });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var id = reader.GetGuid(0);
            var at = reader.GetFieldValue<DateTimeOffset>(1);
            ids[id] = ids.TryGetValue(id, out var seen) && seen < at ? seen : at;
        }

        return [.. ids.OrderBy(p => p.Value).Select(p => (p.Key, p.Value))];
    }
}
