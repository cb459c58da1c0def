using System.Xml.Linq;
using Monal.Push.Ingest.Xml;

namespace Monal.Push.Ingest.Component;

/// <summary><c>&lt;stream:error&gt;</c> (RFC 6120 section 4.9): what we send before closing, and what the server sends us.</summary>
internal static class StreamError
{
    public const string ConditionsNamespace = "urn:ietf:params:xml:ns:xmpp-streams";

    public static readonly XName Name = XName.Get("error", StreamHeader.StreamsNamespace);

    public static string Build(string condition) =>
        "<stream:error><" + condition + " xmlns='" + ConditionsNamespace + "'/></stream:error>";

    /// <summary>The defined condition of a received stream error, or <c>undefined-condition</c>.</summary>
    public static string ConditionOf(XElement error) =>
        error.Elements().FirstOrDefault(e => e.Name.NamespaceName == ConditionsNamespace && e.Name.LocalName != "text")
            ?.Name.LocalName
        ?? StreamErrorConditions.UndefinedCondition;
}
