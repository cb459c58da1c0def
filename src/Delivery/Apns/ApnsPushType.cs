namespace Monal.Push.Delivery.Apns;

/// <summary>
/// The `apns-push-type` header. Apple requires it since iOS 13 / watchOS 6 and rejects a mismatch with the payload.
/// </summary>
internal enum ApnsPushType
{
    Alert,
    Background,
    Voip,
    Location,
    Complication,
    FileProvider,
    Mdm,
    LiveActivity,
    PushToTalk,
}

internal static class ApnsPushTypeExtensions
{
    public static string ToHeaderValue(this ApnsPushType pushType) => pushType switch
    {
        ApnsPushType.Alert => "alert",
        ApnsPushType.Background => "background",
        ApnsPushType.Voip => "voip",
        ApnsPushType.Location => "location",
        ApnsPushType.Complication => "complication",
        ApnsPushType.FileProvider => "fileprovider",
        ApnsPushType.Mdm => "mdm",
        ApnsPushType.LiveActivity => "liveactivity",
        ApnsPushType.PushToTalk => "pushtotalk",
        _ => throw new ArgumentOutOfRangeException(nameof(pushType), pushType, null),
    };

    // Apple's payload limit: 5 KB for VoIP, 4 KB for everything else ("Sending notification requests to APNs").
    public static int MaxPayloadBytes(this ApnsPushType pushType) => pushType == ApnsPushType.Voip ? 5120 : 4096;
}
