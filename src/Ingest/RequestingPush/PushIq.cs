using System.Diagnostics.CodeAnalysis;
using System.Xml.Linq;
using Monal.Push.Ingest.Stanzas;

namespace Monal.Push.Ingest.RequestingPush;

/// <summary>
/// The XEP-0357 section 7 publish IQ. The notification's summary form (body, sender, counts) is deliberately
/// never read: it may hold message content, which the privacy policy forbids us to keep.
/// </summary>
internal static class PushIq
{
    public static readonly XName PubSubName = XName.Get("pubsub", Namespaces.PubSub);
    private static readonly XName PublishName = XName.Get("publish", Namespaces.PubSub);
    private static readonly XName ItemName = XName.Get("item", Namespaces.PubSub);
    private static readonly XName PublishOptionsName = XName.Get("publish-options", Namespaces.PubSub);

    /// <summary>Parses a publish IQ, or produces the <c>modify</c>/<c>bad-request</c> error to answer it with.</summary>
    public static bool TryParse(
        XElement iq, [NotNullWhen(true)] out PublishRequest? request, [NotNullWhen(false)] out StanzaError? error)
    {
        ArgumentNullException.ThrowIfNull(iq);
        request = null;

        var id = (string?)iq.Attribute("id");
        var pubsub = iq.Element(PubSubName);
        var publishes = pubsub?.Elements(PublishName).ToList() ?? [];
        error = (id, iq.Attribute("type")?.Value, publishes.Count) switch
        {
            (null or "", _, _) => StanzaError.BadRequest("The IQ has no id."),
            (_, not "set", _) => StanzaError.BadRequest("A publish must be an IQ set."),
            (_, _, 0) => StanzaError.BadRequest("No publish element."),
            (_, _, > 1) => StanzaError.BadRequest("More than one publish element."),
            _ => null,
        };
        if (error is not null)
        {
            return false;
        }

        var publish = publishes[0];
        var node = (string?)publish.Attribute("node");
        var items = publish.Elements(ItemName).Count();
        var fromDomain = Jid.DomainOf((string?)iq.Attribute("from"));
        var toDomain = Jid.DomainOf((string?)iq.Attribute("to"));
        error = (node, items, fromDomain, toDomain) switch
        {
            (null or "", _, _, _) => StanzaError.BadRequest("The publish has no node."),
            (_, 0, _, _) => StanzaError.BadRequest("The publish has no item."),
            (_, > 1, _, _) => StanzaError.BadRequest("The publish has more than one item."),
            (_, _, null, _) => StanzaError.BadRequest("The IQ has no valid from address."),
            (_, _, _, null) => StanzaError.BadRequest("The IQ has no valid to address."),
            _ => null,
        };
        if (error is not null)
        {
            return false;
        }

        if (!TryReadPublishOptions(pubsub!, out var pushModule, out var secret, out error))
        {
            return false;
        }

        request = new PublishRequest(id!, toDomain!, fromDomain!, node!, pushModule, secret, HasItem: true);
        return true;
    }

    /// <summary>XEP-0357 section 7 / XEP-0060 section 7.1.5: the optional publish-options form.</summary>
    private static bool TryReadPublishOptions(
        XElement pubsub, out string? pushModule, out string? secret, [NotNullWhen(false)] out StanzaError? error)
    {
        pushModule = null;
        secret = null;
        error = null;
        var options = pubsub.Element(PublishOptionsName);
        if (options is null)
        {
            return true;
        }

        var form = options.Element(DataForm.Name);
        if (form is null)
        {
            // An empty <publish-options/> carries nothing; treat it as absent.
            return true;
        }

        var formType = DataForm.Value(form, "FORM_TYPE");
        if (formType is not null && formType != Namespaces.PublishOptionsFormType)
        {
            error = StanzaError.BadRequest("Unexpected publish-options FORM_TYPE.");
            return false;
        }

        pushModule = DataForm.Value(form, "pushModule");
        secret = DataForm.Value(form, "secret");
        return true;
    }
}
