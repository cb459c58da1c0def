namespace Monal.Push.Load.Publishing;

/// <summary>
/// What the generated traffic is made of. Shares are of requests unless named after devices. Defaults: 100,000 devices,
/// a tenth of them registered over HTTP (the rest stateless, node = token), half Prosody-style publishes, 2 % wrong secrets
/// and 2 % unknown nodes, from four server domains.
/// </summary>
internal sealed record LoadMix
{
    public int Devices { get; init; } = 100_000;

    /// <summary>Share of devices registered over <c>/v1/register</c> and published to with their secret.</summary>
    public double RegisteredDeviceShare { get; init; } = 0.1;

    /// <summary>Publishes to a registered node with a wrong secret (expect auth/not-authorized).</summary>
    public double WrongSecretShare { get; init; } = 0.02;

    /// <summary>Publishes with a secret to a node nobody registered (expect cancel/item-not-found).</summary>
    public double UnknownNodeShare { get; init; } = 0.02;

    /// <summary>Share of Prosody-style publishes; the rest is ejabberd-style, split by <see cref="EjabberdEmptyShare"/>.</summary>
    public double ProsodyShare { get; init; } = 0.5;

    /// <summary>Of the ejabberd-style publishes, the share with an empty notification (no summary form).</summary>
    public double EjabberdEmptyShare { get; init; } = 0.5;

    public string PushModule { get; init; } = "monalProdiOS";

    public IReadOnlyList<string> ServerDomains { get; init; } = ["example.org", "chat.example.net", "jabber.example.com", "xmpp.example.de"];

    public int Seed { get; init; } = 4711;
}
