using System.Xml.Linq;

namespace Monal.Push.Ingest.Stanzas;

/// <summary>A stanza error (RFC 6120 section 8.3): type, defined condition and an optional text for humans.</summary>
internal sealed record StanzaError(StanzaErrorType Type, string Condition, string? Text = null)
{
    public static StanzaError BadRequest(string? text = null) => new(StanzaErrorType.Modify, "bad-request", text);

    public static StanzaError ServiceUnavailable { get; } = new(StanzaErrorType.Cancel, "service-unavailable");

    public static StanzaError ItemNotFound { get; } = new(StanzaErrorType.Cancel, "item-not-found");

    public static StanzaError InternalServerError { get; } = new(StanzaErrorType.Wait, "internal-server-error");

    public static string TypeName(StanzaErrorType type) => type switch
    {
        StanzaErrorType.Cancel => "cancel",
        StanzaErrorType.Auth => "auth",
        StanzaErrorType.Modify => "modify",
        StanzaErrorType.Wait => "wait",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary><c>&lt;error type='…'&gt;&lt;condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/&gt;…</c></summary>
    public XElement ToElement()
    {
        XNamespace ns = Namespaces.Stanzas;
        var error = new XElement(XName.Get("error", Namespaces.Component),
            new XAttribute("type", TypeName(Type)),
            new XElement(ns + Condition));
        if (Text is not null)
        {
            error.Add(new XElement(ns + "text", new XAttribute(XNamespace.Xml + "lang", "en"), Text));
        }

        return error;
    }
}
