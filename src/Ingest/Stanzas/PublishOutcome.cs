using Monal.Push.Ingest.Stanzas;

namespace Monal.Push.Ingest.Stanzas;

/// <summary>
/// How a publish is answered (docs/architecture.md, "Ingest"): an empty result, or an IQ error whose
/// type decides whether the XMPP server keeps the registration (only <c>wait</c> never disables push).
/// </summary>
/// <param name="ErrorType">Null for a result; otherwise the error type the server acts on.</param>
/// <param name="Condition">The RFC 6120 defined condition.</param>
/// <param name="Text">An optional text for the server's operator (it never names a token, node or JID).</param>
public readonly record struct PublishOutcome(StanzaErrorType? ErrorType, string? Condition, string? Text = null)
{
    /// <summary>Durably recorded (or coalesced by the throttle): answer with an empty result.</summary>
    public static PublishOutcome Accepted { get; }

    /// <summary>Unknown node, or a token Apple declared invalid: the server should forget it.</summary>
    public static PublishOutcome ItemNotFound { get; } = new(StanzaErrorType.Cancel, "item-not-found");

    /// <summary>Wrong secret.</summary>
    public static PublishOutcome NotAuthorized { get; } = new(StanzaErrorType.Auth, "not-authorized");

    /// <summary>Malformed request, e.g. no push module and no secret, or an unknown push module.</summary>
    public static PublishOutcome BadRequest { get; } = new(StanzaErrorType.Modify, "bad-request");

    /// <summary>A publish that names no push module, to a token node, while <c>Ingest:DefaultPushModule</c> is not set.</summary>
    public static PublishOutcome NoPushModule { get; } = new(StanzaErrorType.Modify, "bad-request",
        "The publish names no push module (no pushModule publish-option) and this server has no default: set Ingest:DefaultPushModule.");

    /// <summary>Storage or Apple temporarily unavailable.</summary>
    public static PublishOutcome InternalServerError { get; } = new(StanzaErrorType.Wait, "internal-server-error");

    /// <summary>Overloaded: the server should retry later.</summary>
    public static PublishOutcome ResourceConstraint { get; } = new(StanzaErrorType.Wait, "resource-constraint");

    /// <summary>The sending domain is over one of its publish limits (docs/operators.md, "Limits"): retry later.</summary>
    public static PublishOutcome DomainLimited { get; } = new(StanzaErrorType.Wait, "resource-constraint",
        "Too many publishes from this domain at once; retry later.");

    /// <summary>The sending domain created its quota of new devices (docs/operators.md, "Limits"): retry later.</summary>
    public static PublishOutcome NewDeviceQuotaUsed { get; } = new(StanzaErrorType.Wait, "resource-constraint",
        "This domain created too many new push devices recently; retry later.");

    public bool IsAccepted => ErrorType is null;
}
