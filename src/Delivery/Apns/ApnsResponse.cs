namespace Monal.Push.Delivery.Apns;

/// <summary>
/// Apple's answer, or ours when the request never got one (Status 0 with one of our ApnsReasons).
/// Timestamp is the 410 body's `timestamp`: when Apple last knew the token to be valid.
/// </summary>
internal sealed record ApnsResponse(int Status, string? Reason, Guid ApnsId, DateTimeOffset? Timestamp, ApnsOutcome Outcome)
{
    public static ApnsResponse FromHttp(int status, string? reason, Guid apnsId, DateTimeOffset? timestamp) =>
        new(status, reason, apnsId, timestamp, ApnsResponseClassifier.Classify(status, reason));

    public static ApnsResponse TransportFailure(string reason, Guid apnsId) =>
        new(0, reason, apnsId, null, ApnsOutcome.Transient);

    // Refused before sending because Apple would refuse it too (payload too large, bad token, collapse id too long).
    public static ApnsResponse RefusedLocally(string reason, Guid apnsId, ApnsOutcome outcome) =>
        new(0, reason, apnsId, null, outcome);
}
