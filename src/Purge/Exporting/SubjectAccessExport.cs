namespace Monal.Push.Purge.Exporting;

// The shape of an answer to a subject access request (GDPR Art. 15): the personal data held, and the purposes,
// recipients, retention periods and source of the processing.

/// <summary>Everything held about the devices a request names, and how it is processed.</summary>
public sealed record SubjectAccessExport(
    Guid RequestId,
    DateTimeOffset ExportedAt,
    string Query,
    IReadOnlyList<DeviceExport> Devices,
    ProcessingInformation Processing);

/// <summary>One device: its token (decrypted), registration, push history and where the data is stored.</summary>
public sealed record DeviceExport(
    Guid DeviceId,
    string Mode,
    string PushModule,
    string? Token,
    string TokenStatus,
    IReadOnlyList<string> EarlierTokens,
    bool SecretStored,
    bool SecretEncrypted,
    DateTimeOffset? RegisteredAt,
    DateTimeOffset? RenewedAt,
    DateTimeOffset? UnregisteredAt,
    DateTimeOffset? LastPushAt,
    DateTimeOffset? LastErrorAt,
    string? LastErrorReason,
    DateTimeOffset? InvalidatedAt,
    DateTimeOffset? AppleTimestamp,
    DateTimeOffset? RejectedAt,
    IReadOnlyList<string> Domains,
    IReadOnlyList<PushExport> Pushes,
    IReadOnlyDictionary<string, long> HeldIn);

/// <summary>One push and its outcome, as held until Retention:PushLog deletes it.</summary>
public sealed record PushExport(
    Guid PushId,
    string Domain,
    DateTimeOffset RequestedAt,
    string Outcome,
    int? Status,
    string? Reason,
    DateTimeOffset? OutcomeAt,
    double? LatencyMs);

/// <summary>Art. 15(1)(a)-(d) and (g): purposes, recipients, retention periods and source.</summary>
public sealed record ProcessingInformation(
    IReadOnlyList<string> Purposes,
    IReadOnlyList<RetentionPeriod> RetentionPeriods,
    IReadOnlyList<string> Recipients,
    IReadOnlyList<string> Sources);

/// <summary>How long one category of data is kept.</summary>
public sealed record RetentionPeriod(string Category, string Period);

/// <summary>The formats `gdpr export --format` offers.</summary>
public enum ExportFormat
{
    /// <summary>Machine-readable JSON (also the Art. 20 portable form).</summary>
    Json,

    /// <summary>Plain text for a person.</summary>
    Text,
}

/// <summary>An export and the document rendered from it.</summary>
public sealed record SubjectAccessResult(SubjectAccessExport Export, string Document);
