using Monal.Push.Ledger.Events;

namespace Monal.Push.Projections.Devices;

/// <summary>
/// What the ingest gateway and the dispatcher need to know about a device. The token stays encrypted with the
/// device's data key (decrypt it with DataKeys at the moment of sending, never cache the clear text).
/// </summary>
public sealed record DeviceState(
    Guid DeviceId,
    DeviceMode Mode,
    string PushModule,
    string? EncryptedToken,
    string? SecretHash,
    DateTimeOffset RegisteredAt,
    DateTimeOffset? RenewedAt,
    DateTimeOffset? InvalidatedAt,
    DateTimeOffset? AppleTimestamp,
    DateTimeOffset? RejectedAt,
    DateTimeOffset? UnregisteredAt)
{
    /// <summary>Pushes are accepted: not unregistered, not invalidated by Apple, not rejected by Apple.</summary>
    public bool IsActive => UnregisteredAt is null && InvalidatedAt is null && RejectedAt is null;
}
