namespace Monal.Push.Ingest.Devices;

/// <summary>
/// Reads the device read model kept inline by the Projections stage (table <c>devices</c>, through DeviceDirectory). A snapshot may be a
/// moment old: the inline projection still refuses a push to a device that stopped being active (MPG01), so a
/// stale "active" never leads to an acknowledged push for a dead device.
/// </summary>
internal interface IDeviceLookup
{
    /// <summary>The device, or null when it is unknown (never registered, or erased).</summary>
    ValueTask<DeviceSnapshot?> FindAsync(Guid deviceId, CancellationToken ct);
}
