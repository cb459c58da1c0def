using Microsoft.Extensions.Logging;

namespace Monal.Push.Delivery;

/// <summary>
/// Delivery logs use event ids 3000-3999. Device tokens never appear: at most a short hash.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "APNs pool {Pool} created for {Endpoint} with at most {MaxConcurrentRequests} requests in flight")]
    public static partial void PoolCreated(ILogger logger, string pool, Uri endpoint, int maxConcurrentRequests);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Debug, Message = "APNs pool {Pool} warmed up: the burst may follow the first request")]
    public static partial void PoolWarmedUp(ILogger logger, string pool);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "APNs provider token for key {KeyId} issued at {IssuedAt}")]
    public static partial void ProviderTokenIssued(ILogger logger, string keyId, DateTimeOffset issuedAt);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "APNs called the provider token for key {KeyId} expired at age {Age}; not refreshing before 20 minutes (is the clock right?)")]
    public static partial void ProviderTokenRefreshDeferred(ILogger logger, string keyId, TimeSpan age);

    [LoggerMessage(EventId = 3010, Level = LogLevel.Debug, Message = "APNs pool {Pool} delivered push {ApnsId}")]
    public static partial void PushDelivered(ILogger logger, string pool, Guid apnsId);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Warning, Message = "APNs pool {Pool} deferred push {ApnsId}: {Status} {Reason}; it will be retried")]
    public static partial void PushDeferred(ILogger logger, string pool, Guid apnsId, int status, string? reason);

    [LoggerMessage(EventId = 3012, Level = LogLevel.Debug, Message = "APNs pool {Pool} refused token {TokenHash} for push {ApnsId}: {Status} {Reason}")]
    public static partial void TokenRefused(ILogger logger, string pool, Guid apnsId, string tokenHash, int status, string? reason);

    [LoggerMessage(EventId = 3013, Level = LogLevel.Error, Message = "APNs pool {Pool} rejected push {ApnsId}: {Status} {Reason}; check the push module's configuration")]
    public static partial void PushRejected(ILogger logger, string pool, Guid apnsId, int status, string? reason);

    [LoggerMessage(EventId = 3014, Level = LogLevel.Warning, Message = "APNs pool {Pool} could not send push {ApnsId}: {Reason}; it will be retried")]
    public static partial void TransportFailed(ILogger logger, string pool, Guid apnsId, string? reason, Exception exception);

    [LoggerMessage(EventId = 3015, Level = LogLevel.Error, Message = "APNs pool {Pool} refused push {ApnsId} before sending: {Reason}")]
    public static partial void PushRefusedLocally(ILogger logger, string pool, Guid apnsId, string? reason);

    [LoggerMessage(EventId = 3016, Level = LogLevel.Warning, Message = "APNs pool {Pool} left a request unanswered for {Timeout}; its connection is replaced (replacement {Count})")]
    public static partial void StuckConnectionReplaced(ILogger logger, string pool, TimeSpan timeout, int count);

    [LoggerMessage(EventId = 3020, Level = LogLevel.Information, Message = "Push module {Module}: topic {Topic}, {Environment}, {Authentication} authentication, {Kind} pushes via {Endpoint}")]
    public static partial void PushModuleLoaded(ILogger logger, string module, string topic, PushModules.ApnsEnvironment environment, string authentication, PushModules.PushModuleKind kind, Uri endpoint);

    // Dispatching (3100-3199). Devices appear only as KeyedHash.Redact short hashes; push ids are random UUIDs.
    [LoggerMessage(EventId = 3100, Level = LogLevel.Information, Message = "Push dispatcher {NodeId} started: at most {MaxInFlight} sends in flight, claims last {LeaseDuration}")]
    public static partial void DispatcherStarted(ILogger logger, string nodeId, int maxInFlight, TimeSpan leaseDuration);

    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "Push dispatcher {NodeId} stopping: taking no new pushes, waiting for {InFlight} sends in flight")]
    public static partial void DispatcherStopping(ILogger logger, string nodeId, int inFlight);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Information, Message = "Push dispatcher {NodeId} stopped; handed back {HandedBack} claimed pushes")]
    public static partial void DispatcherStopped(ILogger logger, string nodeId, int handedBack);

    [LoggerMessage(EventId = 3103, Level = LogLevel.Warning, Message = "Push dispatcher {NodeId} abandoned {Held} claimed pushes; other nodes take them after the lease")]
    public static partial void DispatcherAbandoned(ILogger logger, string nodeId, int held);

    [LoggerMessage(EventId = 3104, Level = LogLevel.Warning, Message = "Push dispatcher {NodeId}: {InFlight} sends did not finish in time and were cut off; they will be sent again with the same apns-id")]
    public static partial void ShutdownTimedOut(ILogger logger, string nodeId, int inFlight);

    [LoggerMessage(EventId = 3105, Level = LogLevel.Warning, Message = "Push dispatcher {NodeId} could not hand its claims back; other nodes take them after {LeaseDuration}")]
    public static partial void HandBackFailed(ILogger logger, string nodeId, TimeSpan leaseDuration, Exception exception);

    [LoggerMessage(EventId = 3111, Level = LogLevel.Warning, Message = "Renewing delivery claims failed; sends stop before the claims lapse")]
    public static partial void LeaseRenewalFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3120, Level = LogLevel.Debug, Message = "Push {PushId} expired after {Attempts} attempts")]
    public static partial void PushExpired(ILogger logger, Guid pushId, int attempts);

    [LoggerMessage(EventId = 3121, Level = LogLevel.Debug, Message = "Push {PushId} not sent: device {Device} is gone or inactive")]
    public static partial void DeviceGone(ILogger logger, Guid pushId, string device);

    [LoggerMessage(EventId = 3122, Level = LogLevel.Error, Message = "Push {PushId} not sent: push module {Module} is not configured")]
    public static partial void UnknownPushModule(ILogger logger, Guid pushId, string module);

    [LoggerMessage(EventId = 3123, Level = LogLevel.Error, Message = "Push {PushId} not sent: the token of device {Device} cannot be decrypted")]
    public static partial void TokenUnreadable(ILogger logger, Guid pushId, string device);

    [LoggerMessage(EventId = 3124, Level = LogLevel.Debug, Message = "Push {PushId} left alone: its claim was about to lapse")]
    public static partial void ClaimLapsed(ILogger logger, Guid pushId);

    [LoggerMessage(EventId = 3125, Level = LogLevel.Debug, Message = "Push {PushId} send abandoned; it will be sent again with the same apns-id")]
    public static partial void SendAbandoned(ILogger logger, Guid pushId);

    [LoggerMessage(EventId = 3126, Level = LogLevel.Debug, Message = "Outcome of push {PushId} not recorded: {Reason} (recorded by another node, or the device was erased)")]
    public static partial void OutcomeRefused(ILogger logger, Guid pushId, string reason);

    [LoggerMessage(EventId = 3127, Level = LogLevel.Warning, Message = "Push {PushId} could not be prepared ({Reason}); its claim is handed back once the database answers")]
    public static partial void PushNotPrepared(ILogger logger, Guid pushId, string reason);

    [LoggerMessage(EventId = 3128, Level = LogLevel.Warning, Message = "Outcome of push {PushId} could not be recorded ({Reason}); retrying in {Delay}")]
    public static partial void OutcomeRecordRetrying(ILogger logger, Guid pushId, string reason, TimeSpan delay);
}
