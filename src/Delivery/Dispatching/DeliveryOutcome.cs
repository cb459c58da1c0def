using Monal.Push.Ledger.Events;

namespace Monal.Push.Delivery.Dispatching;

/// <summary>What the dispatcher counts of a recorded outcome (the <c>outcome</c> tag of monal.push.delivery.outcomes).</summary>
internal enum DeliveryOutcome
{
    Delivered,
    Retried,
    Expired,
    Failed,
    Invalidated,
    Rejected,
}

internal static class DeliveryOutcomes
{
    public static DeliveryOutcome Of(IPushOutcome outcome) => outcome switch
    {
        PushDelivered => DeliveryOutcome.Delivered,
        PushFailed { Transient: true } => DeliveryOutcome.Retried,
        PushFailed { Reason: PushDispatcher.ReasonExpired } => DeliveryOutcome.Expired,
        PushFailed => DeliveryOutcome.Failed,
        TokenInvalidated => DeliveryOutcome.Invalidated,
        _ => DeliveryOutcome.Rejected,
    };

    /// <summary>The metric tag value (unchanged since the tags were strings: dashboards read them).</summary>
    public static string Tag(this DeliveryOutcome outcome) => outcome switch
    {
        DeliveryOutcome.Delivered => "delivered",
        DeliveryOutcome.Retried => "retried",
        DeliveryOutcome.Expired => "expired",
        DeliveryOutcome.Failed => "failed",
        DeliveryOutcome.Invalidated => "invalidated",
        _ => "rejected",
    };
}
