namespace Monal.Push.Ingest.Stanzas;

internal static class Namespaces
{
    public const string Component = "jabber:component:accept";
    public const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
    public const string PubSub = "http://jabber.org/protocol/pubsub";
    public const string Push = "urn:xmpp:push:0";
    public const string DataForms = "jabber:x:data";
    public const string DiscoInfo = "http://jabber.org/protocol/disco#info";
    public const string DiscoItems = "http://jabber.org/protocol/disco#items";
    public const string Commands = "http://jabber.org/protocol/commands";
    public const string Ping = "urn:xmpp:ping";
    public const string PublishOptionsFormType = "http://jabber.org/protocol/pubsub#publish-options";
}
