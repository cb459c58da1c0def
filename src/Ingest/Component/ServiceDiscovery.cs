using System.Xml.Linq;
using Monal.Push.Ingest.Registering;
using Monal.Push.Ingest.Stanzas;

namespace Monal.Push.Ingest.Component;

/// <summary>XEP-0030 answers: who we are (XEP-0357 section 4: a pubsub/push identity) and which commands we offer.</summary>
internal static class ServiceDiscovery
{
    public static readonly XName InfoQueryName = XName.Get("query", Namespaces.DiscoInfo);
    public static readonly XName ItemsQueryName = XName.Get("query", Namespaces.DiscoItems);

    private static readonly string[] Features = [Namespaces.Push, Namespaces.DiscoInfo, Namespaces.Commands, Namespaces.Ping];

    /// <summary>The info query's answer, or null for a node we do not have (item-not-found).</summary>
    public static XElement? Info(string? node)
    {
        XNamespace ns = Namespaces.DiscoInfo;
        if (string.IsNullOrEmpty(node))
        {
            var query = new XElement(InfoQueryName,
                new XElement(ns + "identity",
                    new XAttribute("category", "pubsub"), new XAttribute("type", "push"), new XAttribute("name", "Monal push")));
            query.Add(Features.Select(f => new XElement(ns + "feature", new XAttribute("var", f))));
            return query;
        }

        if (node == Namespaces.Commands)
        {
            return new XElement(InfoQueryName, new XAttribute("node", node),
                new XElement(ns + "feature", new XAttribute("var", Namespaces.DiscoInfo)));
        }

        // XEP-0050 section 2.3: a command node.
        return AdHocCommands.IsKnown(node)
            ? new XElement(InfoQueryName, new XAttribute("node", node),
                new XElement(ns + "identity",
                    new XAttribute("category", "automation"), new XAttribute("type", "command-node"),
                    new XAttribute("name", AdHocCommands.Title(node))),
                new XElement(ns + "feature", new XAttribute("var", Namespaces.Commands)),
                new XElement(ns + "feature", new XAttribute("var", Namespaces.DataForms)))
            : null;
    }

    /// <summary>The items query's answer (XEP-0050 section 2.2 lists the commands), or null for an unknown node.</summary>
    public static XElement? Items(string? node, string ourJid)
    {
        XNamespace ns = Namespaces.DiscoItems;
        if (string.IsNullOrEmpty(node))
        {
            return new XElement(ItemsQueryName);
        }

        return node == Namespaces.Commands
            ? new XElement(ItemsQueryName, new XAttribute("node", node),
                new[] { AdHocCommands.RegisterNode, AdHocCommands.UnregisterNode }.Select(command =>
                    new XElement(ns + "item",
                        new XAttribute("jid", ourJid), new XAttribute("node", command), new XAttribute("name", AdHocCommands.Title(command)))))
            : null;
    }
}
