namespace Monal.Push.Purge.Erasing;

/// <summary>
/// What an erasure removed (or, in a dry run, would remove), per category: events, push_events, streams, data_keys,
/// devices, push_log, push_queue (and throttle_state where that table exists). The receipt id is the one recorded
/// in the DeviceErased event; nothing in the receipt identifies the device, so it can be handed to the person who
/// asked.
/// </summary>
public sealed record EraseReceipt(
    Guid ReceiptId,
    string Cause,
    DateTimeOffset ErasedAt,
    bool DryRun,
    IReadOnlyDictionary<string, long> Deleted)
{
    /// <summary>Whether anything was (or would be) deleted.</summary>
    public bool FoundAnything => Deleted.Values.Any(v => v > 0);
}
