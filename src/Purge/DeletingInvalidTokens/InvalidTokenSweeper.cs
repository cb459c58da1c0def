using Microsoft.Extensions.Options;
using Monal.Push.Purge.Erasing;
using Monal.Push.Purge.Scheduling;
using Npgsql;

namespace Monal.Push.Purge.DeletingInvalidTokens;

/// <summary>
/// Erases every device whose token Apple declared invalid (PRODUCT.md: "A token that Apple reports as invalid is
/// deleted, unless the device registered again after Apple's timestamp"). Candidates come from the inline devices
/// read model, which is written in the append's own transaction and so never lags: the device projection sets
/// invalidated_at (and clears encrypted_token) only when the device had not registered or renewed after Apple's
/// timestamp, and a later registration clears invalidated_at again. The encrypted token is therefore already gone
/// from the row; what is left to erase is the device's stream, its data key and every other row that names it.
/// </summary>
public sealed class InvalidTokenSweeper(NpgsqlDataSource dataSource, DeviceEraser eraser, IOptions<RetentionOptions> options)
    : IRetentionTask
{
    // The registration check repeats the projection's rule, so a row folded by an older projection cannot make us
    // erase a device that registered again after Apple's timestamp.
    private const string CandidatesSql = """
        select device_id, invalidated_at from devices
        where invalidated_at is not null and invalidated_at <= $1
          and greatest(registered_at, renewed_at) <= coalesce(apple_timestamp, invalidated_at)
        order by invalidated_at, device_id
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

    /// <summary>Devices awaiting deletion at <paramref name="cutoff"/>, oldest first (the audit counts these too).</summary>
    public async Task<IReadOnlyList<(Guid DeviceId, DateTimeOffset InvalidatedAt)>> CandidatesAsync(DateTimeOffset cutoff, CancellationToken ct)
    {
        var list = new List<(Guid, DateTimeOffset)>();
        await using var cmd = dataSource.CreateCommand(CandidatesSql);
        cmd.Parameters.Add(new() { Value = cutoff });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            list.Add((reader.GetGuid(0), reader.GetFieldValue<DateTimeOffset>(1)));
        }

        return list;
    }
}
