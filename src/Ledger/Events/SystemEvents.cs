namespace Monal.Push.Ledger.Events;

// Events of the system streams. None of them carries personal data: no token, node, device UUID or JID.

/// <summary>Well-known ids of the system streams.</summary>
public static class SystemStreams
{
    /// <summary>Evidence of every retention job run.</summary>
    public static readonly Guid Retention = new("00000000-0000-7000-8000-00000000a001");

    /// <summary>Receipts of GDPR requests: exports and erasures.</summary>
    public static readonly Guid Gdpr = new("00000000-0000-7000-8000-00000000a002");
}

/// <summary>A retention job ran (evidence for the audit).</summary>
public sealed record RetentionRun(
    Guid RunId,
    string Job,
    DateTimeOffset Cutoff,
    IReadOnlyDictionary<string, long> Deleted,
    double DurationMs,
    string Outcome,
    bool DryRun,
    DateTimeOffset StartedAt);

/// <summary>A device was erased; the receipt id is what the responder hands back, nothing identifies the device.</summary>
public sealed record DeviceErased(Guid ReceiptId, string Cause, IReadOnlyDictionary<string, long> Deleted, DateTimeOffset ErasedAt);

/// <summary>A subject access request was answered.</summary>
public sealed record SubjectAccessExported(Guid RequestId, string Format, DateTimeOffset ExportedAt);
