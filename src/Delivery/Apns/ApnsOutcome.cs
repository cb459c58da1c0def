namespace Monal.Push.Delivery.Apns;

/// <summary>
/// What the dispatcher must do with an APNs answer.
/// </summary>
internal enum ApnsOutcome
{
    // 200: Apple accepted the push.
    Delivered,

    // Try again later: 429, 500, 503, 403 ExpiredProviderToken, connection loss, timeouts, REFUSED_STREAM, GOAWAY.
    Transient,

    // 410 Unregistered / ExpiredToken: the token is dead since ApnsResponse.Timestamp.
    TokenInvalidated,

    // 400 BadDeviceToken / DeviceTokenNotForTopic: the token never was valid for this module.
    TokenRejected,

    // Our request or configuration is wrong (bad topic, payload too large, invalid provider token...): retrying will not help.
    Permanent,
}
