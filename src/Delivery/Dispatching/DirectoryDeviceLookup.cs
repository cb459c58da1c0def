using Monal.Push.Projections.Devices;

namespace Monal.Push.Delivery.Dispatching;

/// <summary>
/// The dispatcher's view of a device, from Projections' DeviceDirectory (cached, evicted by NOTIFY). A stale
/// "active" here costs at most one request to Apple: the outcome append is refused if the device was erased.
/// </summary>
internal sealed class DirectoryDeviceLookup(DeviceDirectory directory) : IDeviceLookup
{
    public async Task<DispatchDevice?> GetAsync(Guid deviceId, CancellationToken ct) =>
        await directory.GetAsync(deviceId, ct) is { } device
            ? new DispatchDevice(device.PushModule, device.EncryptedToken, device.IsActive)
            : null;
}
