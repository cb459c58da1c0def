using Npgsql;

namespace Monal.Push.Projections.PushLog;

/// <summary>What a push-log purge removed (or would remove, in a dry run).</summary>
/// <param name="PushLog">Rows of push_log.</param>
/// <param name="DomainUsagePushes">Rows of domain_usage_pushes (each push's domain and counted outcome).</param>
public readonly record struct PushLogPurgeResult(long PushLog, long DomainUsagePushes);

/// <summary>
/// Deletes the read models' push logs older than the retention window (Retention:PushLog, 14 days by the policy):
/// push_log and domain_usage_pushes, by requested_at, in bounded batches. The per-day domain_usage counters carry
/// no personal data and stay. Called by the Purge stage's retention job.
/// </summary>
public sealed class PushLogRetention(NpgsqlDataSource dataSource)
{
    /// <summary>Removes (or with <paramref name="dryRun"/> counts) rows requested before <paramref name="cutoff"/>.</summary>
    public async Task<PushLogPurgeResult> PurgeAsync(DateTimeOffset cutoff, int batchSize, bool dryRun, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        return new PushLogPurgeResult(
            await PurgeTableAsync("push_log", cutoff, batchSize, dryRun, ct),
            await PurgeTableAsync("domain_usage_pushes", cutoff, batchSize, dryRun, ct));
    }

    private async Task<long> PurgeTableAsync(string table, DateTimeOffset cutoff, int batchSize, bool dryRun, CancellationToken ct)
    {
        if (dryRun)
        {
            await using var count = dataSource.CreateCommand($"select count(*) from {table} where requested_at < $1");
            count.Parameters.Add(new() { Value = cutoff.ToUniversalTime() });
            return (long)(await count.ExecuteScalarAsync(ct))!;
        }

        var deleted = 0L;
        while (true)
        {
            await using var delete = dataSource.CreateCommand($"""
                delete from {table} where push_id in (select push_id from {table} where requested_at < $1 limit $2)
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
