namespace Monal.Push.Delivery.Apns;

/// <summary>
/// The `reason` strings of Apple's "Handling notification responses from APNs", plus the ones we give transport failures.
/// </summary>
internal static class ApnsReasons
{
    // 400
    public const string BadCollapseId = "BadCollapseId";
    public const string BadDeviceToken = "BadDeviceToken";
    public const string BadExpirationDate = "BadExpirationDate";
    public const string BadMessageId = "BadMessageId";
    public const string BadPriority = "BadPriority";
    public const string BadTopic = "BadTopic";
    public const string DeviceTokenNotForTopic = "DeviceTokenNotForTopic";
    public const string DuplicateHeaders = "DuplicateHeaders";
    public const string IdleTimeout = "IdleTimeout";
    public const string InvalidPushType = "InvalidPushType";
    public const string MissingDeviceToken = "MissingDeviceToken";
    public const string MissingTopic = "MissingTopic";
    public const string PayloadEmpty = "PayloadEmpty";
    public const string TopicDisallowed = "TopicDisallowed";

    // 403
    public const string BadCertificate = "BadCertificate";
    public const string BadCertificateEnvironment = "BadCertificateEnvironment";
    public const string ExpiredProviderToken = "ExpiredProviderToken";
    public const string Forbidden = "Forbidden";
    public const string InvalidProviderToken = "InvalidProviderToken";
    public const string MissingProviderToken = "MissingProviderToken";
    public const string UnrelatedKeyIdInToken = "UnrelatedKeyIdInToken";
    public const string BadEnvironmentKeyIdInToken = "BadEnvironmentKeyIdInToken";

    // 404, 405
    public const string BadPath = "BadPath";
    public const string MethodNotAllowed = "MethodNotAllowed";

    // 410
    public const string ExpiredToken = "ExpiredToken";
    public const string Unregistered = "Unregistered";

    // 413
    public const string PayloadTooLarge = "PayloadTooLarge";

    // 429
    public const string TooManyProviderTokenUpdates = "TooManyProviderTokenUpdates";
    public const string TooManyRequests = "TooManyRequests";

    // 500, 503
    public const string InternalServerError = "InternalServerError";
    public const string ServiceUnavailable = "ServiceUnavailable";
    public const string Shutdown = "Shutdown";

    // Ours, with Status 0: the request never got an HTTP answer.
    public const string Timeout = "Timeout";
    public const string ConnectionFailed = "ConnectionFailed";
    public const string ConnectionLost = "ConnectionLost";
    public const string RefusedStream = "RefusedStream";
    public const string ProtocolError = "ProtocolError";
    public const string TlsFailure = "TlsFailure";
}
