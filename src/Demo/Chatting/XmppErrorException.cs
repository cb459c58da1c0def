using System.Xml.Linq;

namespace Monal.Push.Demo.Chatting;

/// <summary>The server answered with an error stanza, a SASL failure or a stream error.</summary>
public sealed class XmppErrorException : Exception
{
    public XmppErrorException()
    {
    }

    public XmppErrorException(string message)
        : base(message)
    {
    }

    public XmppErrorException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public XmppErrorException(string message, XElement stanza)
        : base($"{message}: {stanza.ToString(SaveOptions.DisableFormatting)}")
    {
        Stanza = stanza;
    }

    /// <summary>The error stanza as received, if there was one.</summary>
    public XElement? Stanza { get; }

    /// <summary>The error type (cancel, auth, modify, wait, continue), if any.</summary>
    public string? ErrorType => Stanza?.Element(Stanza.Name.Namespace + "error")?.Attribute("type")?.Value;

    /// <summary>The defined condition's local name (e.g. item-not-found), if any.</summary>
    public string? Condition => Stanza?.Element(Stanza.Name.Namespace + "error")?.Elements()
        .FirstOrDefault(e => e.Name.NamespaceName == "urn:ietf:params:xml:ns:xmpp-stanzas" && e.Name.LocalName != "text")?.Name.LocalName
        ?? Stanza?.Elements().FirstOrDefault()?.Name.LocalName;
}
