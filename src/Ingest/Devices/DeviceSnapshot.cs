using Monal.Push.Ledger.Events;

namespace Monal.Push.Ingest.Devices;

/// <summary>
/// What ingest needs to know about a device to answer a publish: how it is addressed, its secret hash and whether
/// it may still receive pushes (not unregistered, not invalidated or rejected by Apple). Never the token.
/// </summary>
internal sealed record DeviceSnapshot(Guid DeviceId, DeviceMode Mode, string PushModule, string? SecretHash, bool IsActive);
