using Npgsql;

namespace Monal.Push.Purge;

/// <summary>
/// Names of the read-model tables kept by Monal.Push.Projections (migrations/0003_read_models.sql) and by ingest
/// (throttle_state). Purge queries them with its own SQL and tolerates a table that is not there (yet): a stage
/// that is not deployed holds no data to purge, export or erase.
/// </summary>
internal static class ReadModelTables
{
    public const string Devices = "devices";
    public const string PushLog = "push_log";
    public const string DomainUsage = "domain_usage";
    public const string ThrottleState = "throttle_state";

    public static async Task<bool> ExistsAsync(NpgsqlDataSource dataSource, string table, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select to_regclass($1) is not null");
        cmd.Parameters.Add(new() { Value = table });
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
