using Monal.Push.Ledger.Events;
using Npgsql;

namespace Monal.Push.Ingest.Devices;

/// <summary>
/// Reads one row of the <c>devices</c> read model by primary key. The Projections stage owns the table (migration
/// 0003); this reader only needs the columns that decide a publish.
/// </summary>
internal sealed class SqlDeviceLookup(NpgsqlDataSource dataSource) : IDeviceLookup
{
    private const string Sql = """
        select mode, push_module, secret_hash,
               unregistered_at is null and invalidated_at is null and rejected_at is null as active
        from devices where device_id = $1
        """;

    public async ValueTask<DeviceSnapshot?> FindAsync(Guid deviceId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(Sql);
        cmd.Parameters.Add(new() { Value = deviceId });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct))
        {
            return null;
        }

        var mode = reader.GetString(0) == "stateless" ? DeviceMode.Stateless : DeviceMode.Registered;
        return new DeviceSnapshot(
            deviceId, mode, reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetBoolean(3));
    }
}
