using Microsoft.Extensions.Logging;

namespace Monal.Push.Delivery;

// Delivery logs use event ids 3000-3999 (STYLE.md section 7). Device tokens never appear: at most a short hash.
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

    [LoggerMessage(EventId = 3020, Level = LogLevel.Information, Message = "Push module {Module}: topic {Topic}, {Environment}, {Authentication} authentication, {Kind} pushes via {Endpoint}")]
    public static partial void PushModuleLoaded(ILogger logger, string module, string topic, PushModules.ApnsEnvironment environment, string authentication, PushModules.PushModuleKind kind, Uri endpoint);
}
