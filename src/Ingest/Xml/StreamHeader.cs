using System.Security;

namespace Monal.Push.Ingest.Xml;

/// <summary>The opening <c>&lt;stream:stream&gt;</c> tag (RFC 6120 section 4.7; XEP-0114 section 3).</summary>
internal sealed record StreamHeader(string? Id, string? From, string? To, string? DefaultNamespace)
{
    public const string StreamsNamespace = "http://etherx.jabber.org/streams";
    public const string ComponentNamespace = "jabber:component:accept";

    /// <summary>What the component sends to open its stream to the server (XEP-0114 section 3, step 1).</summary>
    public static string Open(string domain) =>
        "<?xml version='1.0'?><stream:stream xmlns='" + ComponentNamespace + "' xmlns:stream='" + StreamsNamespace +
        "' to='" + SecurityElement.Escape(domain) + "'>";

    public const string Close = "</stream:stream>";
}
