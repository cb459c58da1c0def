namespace Monal.Push.Delivery.Dispatching;

/// <summary>
/// What the dispatcher needs to know about a device right before sending: which push module, the token (still
/// encrypted with the device's data key) and whether pushes may still go to it. Null when the device is gone.
/// </summary>
internal interface IDeviceLookup
{
    Task<DispatchDevice?> GetAsync(Guid deviceId, CancellationToken ct);
}

internal sealed record DispatchDevice(string PushModule, string? EncryptedToken, bool IsActive);
