namespace Monal.Push.Delivery.Apns;

/// <summary>
/// One push as Apple's provider API takes it. ApnsId is chosen by the caller and stays the same across retries of one
/// push so that Apple's and our logs can be matched. TimeToLive becomes an absolute `apns-expiration` when sent:
/// null omits the header (Apple's storage policy), TimeSpan.Zero sends 0 (deliver now or never).
/// </summary>
internal sealed record ApnsRequest(
    string DeviceToken,
    string Topic,
    ApnsPushType PushType,
    ApnsPriority Priority,
    ReadOnlyMemory<byte> Payload,
    Guid ApnsId,
    TimeSpan? TimeToLive,
    string? CollapseId = null);
