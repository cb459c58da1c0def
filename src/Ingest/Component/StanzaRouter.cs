using System.Xml.Linq;
using Microsoft.Extensions.Logging;
using Monal.Push.Ingest.Registering;
using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ingest.Stanzas;

namespace Monal.Push.Ingest.Component;

/// <summary>
/// Turns one inbound stanza into at most one reply. IQ get/set always get an answer (RFC 6120 section 8.2.3);
/// results, errors, messages and presence are ignored. A handler's exception becomes <c>wait</c>/<c>internal-server-error</c>:
/// the link must stay up and the XMPP server must not disable push because of our fault.
/// </summary>
internal sealed class StanzaRouter(IPublishHandler publishHandler, IRegistrationHandler registrationHandler, ILogger<StanzaRouter> logger)
{
    private static readonly XName PingName = XName.Get("ping", Namespaces.Ping);

    public async ValueTask<XElement?> RouteAsync(XElement stanza, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stanza);
        if (stanza.Name != Iq.Name)
        {
            Log.StanzaIgnored(logger, stanza.Name.LocalName);
            return null;
        }

        var type = (string?)stanza.Attribute("type");
        if (type is not ("get" or "set"))
        {
            // Results and errors the server sends us (e.g. to our pings) need no answer; unknown types neither.
            Log.StanzaIgnored(logger, "iq " + type);
            return null;
        }

        var payloads = stanza.Elements().Take(2).ToList();
        if (payloads.Count != 1)
        {
            return Iq.Error(stanza, StanzaError.BadRequest("An IQ get or set carries exactly one payload."));
        }

        var payload = payloads[0];
        var get = type == "get";
        if (!get && payload.Name == PushIq.PubSubName)
        {
            return await PublishAsync(stanza, ct);
        }

        if (!get && payload.Name == AdHocCommands.CommandName)
        {
            return await CommandAsync(stanza, payload, ct);
        }

        if (get && payload.Name == PingName)
        {
            return Iq.Result(stanza);
        }

        if (get && payload.Name == ServiceDiscovery.InfoQueryName)
        {
            var info = ServiceDiscovery.Info((string?)payload.Attribute("node"));
            return info is null ? Iq.Error(stanza, StanzaError.ItemNotFound) : Iq.Result(stanza, info);
        }

        if (get && payload.Name == ServiceDiscovery.ItemsQueryName)
        {
            var items = ServiceDiscovery.Items((string?)payload.Attribute("node"), OurJid(stanza));
            return items is null ? Iq.Error(stanza, StanzaError.ItemNotFound) : Iq.Result(stanza, items);
        }

        Log.IqUnsupported(logger, (string?)stanza.Attribute("id"), payload.Name.NamespaceName, payload.Name.LocalName);
        return Iq.Error(stanza, StanzaError.ServiceUnavailable);
    }

    private async ValueTask<XElement> PublishAsync(XElement iq, CancellationToken ct)
    {
        if (!PushIq.TryParse(iq, out var request, out var error))
        {
            Log.PublishMalformed(logger, (string?)iq.Attribute("id"), error.Text);
            return Iq.Error(iq, error);
        }

        PublishOutcome outcome;
        try
        {
            outcome = await publishHandler.HandleAsync(request, ct);
        }
#pragma warning disable CA1031 // Any handler failure is answered with wait/internal-server-error; the link stays up.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.HandlerFailed(logger, "publish", e.GetType().FullName ?? e.GetType().Name);
            outcome = PublishOutcome.InternalServerError;
        }

        if (outcome.IsAccepted)
        {
            Log.PublishAnswered(logger, request.Id, "result");
            return Iq.Result(iq);
        }

        Log.PublishAnswered(logger, request.Id, outcome.Condition ?? "undefined-condition");
        return Iq.Error(iq, new StanzaError(outcome.ErrorType!.Value, outcome.Condition ?? "undefined-condition", outcome.Text));
    }

    private async ValueTask<XElement> CommandAsync(XElement iq, XElement command, CancellationToken ct)
    {
        var node = (string?)command.Attribute("node");
        var action = (string?)command.Attribute("action") ?? "execute";
        if (!AdHocCommands.IsKnown(node))
        {
            return Iq.Error(iq, StanzaError.ItemNotFound);
        }

        var sessionId = (string?)command.Attribute("sessionid") ?? Guid.NewGuid().ToString("N");
        if (action == "cancel")
        {
            Log.CommandAnswered(logger, node!, action, "canceled");
            return Iq.Result(iq, AdHocCommands.Canceled(node!, sessionId));
        }

        if (action is not ("execute" or "complete"))
        {
            return Iq.Error(iq, StanzaError.BadRequest("Unsupported command action."));
        }

        if (command.Element(DataForm.Name) is null)
        {
            Log.CommandAnswered(logger, node!, action, "executing");
            return Iq.Result(iq, AdHocCommands.FormToFill(node!, sessionId));
        }

        var fromDomain = Jid.DomainOf((string?)iq.Attribute("from"));
        if (fromDomain is null)
        {
            return Iq.Error(iq, StanzaError.BadRequest("The IQ has no valid from address."));
        }

        if (!AdHocCommands.TryParse(command, out var parsed, out var error))
        {
            return Iq.Error(iq, error);
        }

        RegistrationResult result;
        try
        {
            result = parsed.Action == RegistrationAction.Register
                ? await registrationHandler.RegisterAsync(parsed.Type, parsed.Node, parsed.Token!, fromDomain, ct)
                : await registrationHandler.UnregisterAsync(parsed.Type, parsed.Node, fromDomain, ct);
        }
#pragma warning disable CA1031 // Any handler failure is answered with wait/internal-server-error; the link stays up.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.HandlerFailed(logger, "registration", e.GetType().FullName ?? e.GetType().Name);
            return Iq.Error(iq, StanzaError.InternalServerError);
        }

        if (result.TryLater)
        {
            // A limit (issue 18): "try later", which never makes the server drop the registration.
            Log.CommandAnswered(logger, node!, action, "resource-constraint");
            return Iq.Error(iq, new StanzaError(StanzaErrorType.Wait, "resource-constraint", result.ErrorText));
        }

        if (!result.Succeeded)
        {
            // mod_push_appserver answers refused command data with modify/not-acceptable.
            Log.CommandAnswered(logger, node!, action, "not-acceptable");
            return Iq.Error(iq, new StanzaError(StanzaErrorType.Modify, "not-acceptable", result.ErrorText));
        }

        Log.CommandAnswered(logger, node!, action, AdHocCommands.MonalCompleteStatus);
        return Iq.Result(iq, AdHocCommands.Completed(node!, sessionId, OurJid(iq), result));
    }

    private static string OurJid(XElement iq) => (string?)iq.Attribute("to") ?? string.Empty;
}
