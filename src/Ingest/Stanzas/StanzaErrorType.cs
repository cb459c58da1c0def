namespace Monal.Push.Ingest.Stanzas;

/// <summary>The <c>type</c> of a stanza error (RFC 6120 section 8.3.2): what the requester should do next.</summary>
public enum StanzaErrorType
{
    /// <summary>Do not retry (e.g. the node is unknown: the XMPP server should forget it).</summary>
    Cancel,

    /// <summary>Retry after providing credentials (a wrong secret).</summary>
    Auth,

    /// <summary>Retry after changing the request (malformed).</summary>
    Modify,

    /// <summary>Retry later; XMPP servers never disable push for this type.</summary>
    Wait,
}
