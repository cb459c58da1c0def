using System.Diagnostics.CodeAnalysis;
using System.Xml.Linq;
using Monal.Push.Ingest.Stanzas;

namespace Monal.Push.Ingest.Registering;

/// <summary>
/// XEP-0050 ad-hoc commands as mod_push_appserver offers them to older Monal versions: <c>v1-register-push</c>
/// (fields type, node, token → node, secret) and <c>v1-unregister-push</c> (fields type, node).
/// </summary>
internal static class AdHocCommands
{
    public const string RegisterNode = "v1-register-push";
    public const string UnregisterNode = "v1-unregister-push";

    /// <summary>What mod_push_appserver and Monal 5.0-5.1 use where XEP-0050 says <c>completed</c> (see <see cref="Completed"/>).</summary>
    public const string MonalCompleteStatus = "complete";

    public static readonly XName CommandName = XName.Get("command", Namespaces.Commands);

    public static bool IsKnown(string? node) => node is RegisterNode or UnregisterNode;

    public static string Title(string node) => node == RegisterNode ? "Register push device" : "Unregister push device";

    /// <summary>Reads the submitted form; a missing field is a <c>modify</c>/<c>bad-request</c>.</summary>
    public static bool TryParse(
        XElement command, [NotNullWhen(true)] out RegistrationCommand? parsed, [NotNullWhen(false)] out StanzaError? error)
    {
        parsed = null;
        var node = (string?)command.Attribute("node");
        var form = command.Element(DataForm.Name);
        if (!IsKnown(node) || form is null)
        {
            error = StanzaError.BadRequest("Unknown command or no form.");
            return false;
        }

        var type = DataForm.Value(form, "type");
        var deviceNode = DataForm.Value(form, "node");
        var token = DataForm.Value(form, "token");
        var register = node == RegisterNode;
        if (type is null || deviceNode is null || (register && token is null))
        {
            error = StanzaError.BadRequest(register ? "Fields type, node and token are required." : "Fields type and node are required.");
            return false;
        }

        parsed = new RegistrationCommand(
            register ? RegistrationAction.Register : RegistrationAction.Unregister, type, deviceNode, register ? token : null);
        error = null;
        return true;
    }

    /// <summary>XEP-0050 section 3.4: no form submitted yet, so send the one to fill (status executing).</summary>
    public static XElement FormToFill(string node, string sessionId)
    {
        var fields = node == RegisterNode ? new[] { "type", "node", "token" } : ["type", "node"];
        XNamespace x = Namespaces.DataForms;
        var form = new XElement(DataForm.Name, new XAttribute("type", "form"), new XElement(x + "title", Title(node)));
        foreach (var field in fields)
        {
            form.Add(new XElement(x + "field",
                new XAttribute("var", field), new XAttribute("type", "text-single"), new XElement(x + "required")));
        }

        return Command(node, sessionId, "executing",
            new XElement(XName.Get("actions", Namespaces.Commands), new XAttribute("execute", "complete"),
                new XElement(XName.Get("complete", Namespaces.Commands))),
            form);
    }

    /// <summary>
    /// The finished command carrying a result form with <c>jid</c>, <c>node</c> and, for a registration, <c>secret</c>
    /// (mod_push_appserver's unregister result form has only <c>jid</c> and <c>node</c>).
    /// </summary>
    /// <remarks>
    /// Deliberately <c>status='complete'</c>, not XEP-0050's <c>completed</c> (section 6.1): mod_push_appserver answers
    /// both v1 commands so (mod_push_appserver.lua lines 146-151 and 192-197), and Monal 5.0-5.1 accepts the register
    /// reply only with exactly that value. Its MLIQProcessor.m line 531 (commit 25201ae1) looks the form up with
    /// <c>command&lt;status=complete&gt;&lt;node=v1-register-push&gt;</c>, an attribute filter MLXMLNode.m compiles to
    /// the anchored regex <c>^complete$</c>; with <c>completed</c> it logs "Appserver returned invalid data" and never
    /// enables push. The unregister reply follows mod_push_appserver too, so both commands answer alike. See
    /// docs/peers.md, "Monal 5.0-5.1 ad-hoc registration".
    /// </remarks>
    public static XElement Completed(string node, string sessionId, string ourJid, RegistrationResult result)
    {
        var form = result.Secret is null
            ? DataForm.Build("result", ("jid", "jid-single", ourJid), ("node", "text-single", result.Node))
            : DataForm.Build("result",
                ("jid", "jid-single", ourJid), ("node", "text-single", result.Node), ("secret", "text-single", result.Secret));
        return Command(node, sessionId, MonalCompleteStatus, form);
    }

    public static XElement Canceled(string node, string sessionId) => Command(node, sessionId, "canceled");

    private static XElement Command(string node, string sessionId, string status, params object[] content) =>
        new(CommandName,
            new XAttribute("node", node), new XAttribute("sessionid", sessionId), new XAttribute("status", status), content);
}
