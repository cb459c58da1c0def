using Npgsql;

namespace Monal.Push.Projections.PushLog;

/// <summary>What a push-log purge removed (or would remove, in a dry run).</summary>
/// <param name="PushLog">Rows of push_log.</param>
/// <param name="DomainUsage">Rows of domain_usage (one UTC day's counters of one XMPP domain).</param>
public readonly record struct PushLogPurgeResult(long PushLog, long DomainUsage);

/// <summary>
/// Deletes the read models' push history older than the retention window (Retention:PushLog, 14 days by the policy):
/// push_log by requested_at, and the per-day domain_usage counters, in bounded batches.
/// The counters name no device, but on a domain with one user a day's count is that person's pushes (how many
/// messages they received): so no count outlives the window either. A day's row goes as soon as the start of its
/// UTC day is older than the cutoff, as a log file does, which keeps every counted push within the window.
/// Called by the Purge stage's retention job.
/// </summary>
public sealed class PushLogRetention(NpgsqlDataSource dataSource)
{
    private const string RequestedBefore = "requested_at < $1";
    private const string DayStartedBefore = "(day::timestamp at time zone 'UTC') < $1";

    /// <summary>Removes (or with <paramref name="dryRun"/> counts) rows requested before <paramref name="cutoff"/>.</summary>
    public async Task<PushLogPurgeResult> PurgeAsync(DateTimeOffset cutoff, int batchSize, bool dryRun, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        return new PushLogPurgeResult(
            await PurgeTableAsync("push_log", "push_id", RequestedBefore, cutoff, batchSize, dryRun, ct),
            await PurgeTableAsync("domain_usage", "day, domain", DayStartedBefore, cutoff, batchSize, dryRun, ct));
    }

    private async Task<long> PurgeTableAsync(
        string table, string key, string olderThanCutoff, DateTimeOffset cutoff, int batchSize, bool dryRun, CancellationToken ct)
    {
        if (dryRun)
        {
            await using var count = dataSource.CreateCommand($"select count(*) from {table} where {olderThanCutoff}");
            count.Parameters.Add(new() { Value = cutoff.ToUniversalTime() });
            return (long)(await count.ExecuteScalarAsync(ct))!;
        }

        var deleted = 0L;
        while (true)
        {
            await using var delete = dataSource.CreateCommand($"""
                delete from {table} where ({key}) in (select {key} from {table} where {olderThanCutoff} limit $2)
                """);
            delete.Parameters.Add(new() { Value = cutoff.ToUniversalTime() });
            delete.Parameters.Add(new() { Value = batchSize });
            var n = await delete.ExecuteNonQueryAsync(ct);
            deleted += n;
            if (n < batchSize)
            {
                return deleted;
            }
        }
    }
}
