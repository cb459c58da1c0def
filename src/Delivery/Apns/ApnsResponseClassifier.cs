namespace Monal.Push.Delivery.Apns;

/// <summary>
/// Maps Apple's status and reason to what the dispatcher does next ("Handling notification responses from APNs").
/// </summary>
internal static class ApnsResponseClassifier
{
    public static ApnsOutcome Classify(int status, string? reason) => status switch
    {
        200 => ApnsOutcome.Delivered,
        0 => ApnsOutcome.Transient,
        400 => reason switch
        {
            ApnsReasons.BadDeviceToken or ApnsReasons.DeviceTokenNotForTopic => ApnsOutcome.TokenRejected,
            // Apple closed an idle connection under the request: nothing is wrong with the push itself.
            ApnsReasons.IdleTimeout => ApnsOutcome.Transient,
            _ => ApnsOutcome.Permanent,
        },
        // A stale JWT is fixed by refreshing it; every other 403 is a credential Apple will keep refusing.
        403 => reason == ApnsReasons.ExpiredProviderToken ? ApnsOutcome.Transient : ApnsOutcome.Permanent,
        // 410 is only ever Unregistered or ExpiredToken; either way the token is gone.
        410 => ApnsOutcome.TokenInvalidated,
        // TooManyRequests (same device too often) and TooManyProviderTokenUpdates both pass if we wait.
        429 => ApnsOutcome.Transient,
        >= 500 and < 600 => ApnsOutcome.Transient,
        _ => ApnsOutcome.Permanent,
    };
}
