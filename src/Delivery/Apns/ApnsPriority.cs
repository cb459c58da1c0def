namespace Monal.Push.Delivery.Apns;

/// <summary>
/// The `apns-priority` header: 10 sends at once, 5 lets the device save power (required for background pushes), 1 is
/// "throttled".
/// </summary>
internal enum ApnsPriority
{
    Throttled = 1,
    PowerConsiderate = 5,
    Immediate = 10,
}
