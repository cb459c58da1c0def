using Npgsql;

namespace Monal.Push.Delivery.Dispatching;

// Reads the `devices` read model (migrations/0003_read_models.sql, kept inline by Projections' DeviceProjection).
// TODO(merge): replace with an adapter over Projections' DeviceDirectory (cached, evicted by NOTIFY) once it is on main.
internal sealed class DevicesTableLookup(NpgsqlDataSource dataSource) : IDeviceLookup
{
    public async Task<DispatchDevice?> GetAsync(Guid deviceId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            select push_module, encrypted_token,
                   unregistered_at is null and invalidated_at is null and rejected_at is null
            from devices where device_id = $1
            """);
        cmd.Parameters.Add(new() { Value = deviceId });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct))
        {
            return null;
        }

        return new DispatchDevice(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetBoolean(2));
    }
}
