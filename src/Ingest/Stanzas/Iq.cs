using System.Xml.Linq;

namespace Monal.Push.Ingest.Stanzas;

/// <summary>IQ stanzas (RFC 6120 section 8.2.3): names and the reply builders.</summary>
internal static class Iq
{
    public static readonly XName Name = XName.Get("iq", Namespaces.Component);

    /// <summary>An empty <c>result</c> (or one carrying <paramref name="payload"/>), addressed back to the sender.</summary>
    public static XElement Result(XElement request, XElement? payload = null)
    {
        var reply = Reply(request, "result");
        if (payload is not null)
        {
            reply.Add(payload);
        }

        return reply;
    }

    /// <summary>An <c>error</c> reply: to/from swapped, same id (RFC 6120 section 8.3.1). The request body is not echoed.</summary>
    public static XElement Error(XElement request, StanzaError error)
    {
        var reply = Reply(request, "error");
        reply.Add(error.ToElement());
        return reply;
    }

    private static XElement Reply(XElement request, string type)
    {
        var reply = new XElement(Name, new XAttribute("type", type));
        if ((string?)request.Attribute("id") is { } id)
        {
            reply.Add(new XAttribute("id", id));
        }

        if ((string?)request.Attribute("from") is { } from)
        {
            reply.Add(new XAttribute("to", from));
        }

        if ((string?)request.Attribute("to") is { } to)
        {
            reply.Add(new XAttribute("from", to));
        }

        return reply;
    }
}
