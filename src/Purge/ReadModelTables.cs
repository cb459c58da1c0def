using Npgsql;

namespace Monal.Push.Purge;

/// <summary>
/// Names of the tables Purge reads for export, erasure receipts and the audit. The read models belong to
/// Monal.Push.Projections (migrations/0003_read_models.sql) and the delivery queue to Monal.Push.Delivery
/// (migrations/0005_delivery_queue.sql): their owners delete from them (deletion hooks, PushLogRetention), Purge only
/// counts and reads. throttle_state (a future persistent throttle) and dead_tokens (keyed ids of tokens Apple
/// rejected, kept for Retention:PushLog; added by its own migration) may not exist yet, so they are looked up
/// before use.
/// </summary>
internal static class ReadModelTables
{
    public const string Devices = "devices";
    public const string PushLog = "push_log";
    public const string DomainUsage = "domain_usage";
    public const string ProjectionCheckpoints = "projection_checkpoints";
    public const string PushQueue = "push_queue";
    public const string ThrottleState = "throttle_state";
    public const string DeadTokens = "dead_tokens";
    public const string NewDeviceQuota = "new_device_quota";

    public static async Task<bool> ExistsAsync(NpgsqlDataSource dataSource, string table, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select to_regclass($1) is not null");
        cmd.Parameters.Add(new() { Value = table });
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
