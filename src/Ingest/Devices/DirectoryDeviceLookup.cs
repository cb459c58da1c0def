using Monal.Push.Projections.Devices;

namespace Monal.Push.Ingest.Devices;

/// <summary>Device lookups through the Projections stage's <see cref="DeviceDirectory"/> (cached, evicted on every change).</summary>
internal sealed class DirectoryDeviceLookup(DeviceDirectory directory) : IDeviceLookup
{
    public async ValueTask<DeviceSnapshot?> FindAsync(Guid deviceId, CancellationToken ct) =>
        await directory.GetAsync(deviceId, ct) is { } state
            ? new DeviceSnapshot(state.DeviceId, state.Mode, state.PushModule, state.SecretHash, state.IsActive)
            : null;
}
