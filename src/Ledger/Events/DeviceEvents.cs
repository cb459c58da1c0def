namespace Monal.Push.Ledger.Events;

// Events of a device's stream (stream id = device UUID). Tokens only ever appear here encrypted with the
// device's data key (see Crypto/DataKeys.cs); bodies, senders and user JIDs never appear at all.

/// <summary>How a device is addressed (stateless or registered; docs/architecture.md, "Ingest").</summary>
public enum DeviceMode
{
    /// <summary>The node is the APNs token; the publish-options name a push module (fpush style).</summary>
    Stateless = 1,

    /// <summary>The node is a registered device UUID with a secret (mod_push_appserver style).</summary>
    Registered = 2,
}

/// <summary>
/// The names a <see cref="DeviceMode"/> has outside events: the <c>devices.mode</c> column
/// (migrations/0003_read_models.sql) and metric tags. Stored values: never change them.
/// </summary>
public static class DeviceModes
{
    /// <summary>The stored name of <see cref="DeviceMode.Stateless"/>.</summary>
    public const string StatelessName = "stateless";

    /// <summary>The stored name of <see cref="DeviceMode.Registered"/>.</summary>
    public const string RegisteredName = "registered";

    /// <summary>The stored name of <paramref name="mode"/>.</summary>
    public static string Name(this DeviceMode mode) => mode == DeviceMode.Stateless ? StatelessName : RegisteredName;

    /// <summary>The mode a stored name stands for.</summary>
    public static DeviceMode Parse(string name) => name == StatelessName ? DeviceMode.Stateless : DeviceMode.Registered;
}

/// <summary>
/// A device became known: a v1 registration, or the first publish to a stateless node. A registered device's
/// secret is kept twice: hashed (for the constant-time check) and encrypted with the device's data key (so that a
/// re-registration can hand the same secret back, as mod_push_appserver does, and erasure shreds it).
/// </summary>
public sealed record DeviceRegistered(
    Guid DeviceId,
    DeviceMode Mode,
    string PushModule,
    string EncryptedToken,
    string? SecretHash,
    string? Domain,
    DateTimeOffset RegisteredAt,
    string? EncryptedSecret = null);

/// <summary>
/// A registered device registered again: same node and secret, possibly a new token. When the token changed, the
/// device's data key was rotated: the token and the secret are encrypted with the new generation (EncryptedSecret),
/// the older generations are deleted, and the stream keeps only the latest renewal (docs/architecture.md).
/// </summary>
public sealed record RegistrationRenewed(
    Guid DeviceId,
    string PushModule,
    string EncryptedToken,
    string? Domain,
    DateTimeOffset RenewedAt,
    string? EncryptedSecret = null);

/// <summary>The device asked to stop receiving pushes (v1 unregister).</summary>
public sealed record DeviceUnregistered(Guid DeviceId, DateTimeOffset UnregisteredAt);

/// <summary>
/// An XMPP server asked for a push and we acknowledged it: the outbox entry of the dispatcher. The push id is
/// stable per push and is also the apns-id, so a retry after a crash is recognisable. A push coalesced by the
/// throttle is not sent before <c>NotBefore</c> (the end of the device's window).
/// </summary>
public sealed record PushRequested(
    Guid PushId,
    Guid DeviceId,
    string Domain,
    DateTimeOffset RequestedAt,
    DateTimeOffset ExpiresAt,
    DateTimeOffset? NotBefore = null);

/// <summary>What happened to one push: the events the dispatcher records in the device's stream.</summary>
public interface IPushOutcome
{
    /// <summary>The push (its apns-id).</summary>
    Guid PushId { get; }

    /// <summary>The device the push was for.</summary>
    Guid DeviceId { get; }
}

/// <summary>Apple accepted the push.</summary>
public sealed record PushDelivered(Guid PushId, Guid DeviceId, Guid ApnsId, DateTimeOffset DeliveredAt, double LatencyMs) : IPushOutcome;

/// <summary>Apple (or the way to it) refused the push; transient failures are retried until the push expires.</summary>
public sealed record PushFailed(
    Guid PushId,
    Guid DeviceId,
    int Status,
    string? Reason,
    bool Transient,
    DateTimeOffset FailedAt) : IPushOutcome;

/// <summary>Apple answered 410 (Unregistered or ExpiredToken): the token is dead since Apple's timestamp.</summary>
public sealed record TokenInvalidated(
    Guid PushId,
    Guid DeviceId,
    string Reason,
    DateTimeOffset AppleTimestamp,
    DateTimeOffset InvalidatedAt) : IPushOutcome;

/// <summary>Apple answered BadDeviceToken or DeviceTokenNotForTopic: wrong for this environment or topic.</summary>
public sealed record TokenRejected(Guid PushId, Guid DeviceId, string Reason, DateTimeOffset RejectedAt) : IPushOutcome;

/// <summary>
/// How push module names compare everywhere (Ingest's check of a publish or a registration, Delivery's lookup of a
/// stored device's module): ordinally, as the publish-option carries them and as the configuration spells them. A
/// name Ingest accepts is stored as given, so Delivery finds it by the same rule.
/// </summary>
public static class PushModuleNames
{
    /// <summary>The one comparer for push module names.</summary>
    public static StringComparer Comparer => StringComparer.Ordinal;
}
