using System.Xml.Linq;
using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Ingest.Component;
using Monal.Push.Ingest.Registering;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

public sealed class StanzaRouterTests
{
    private static readonly XNamespace Client = "jabber:component:accept";
    private static readonly XNamespace Commands = "http://jabber.org/protocol/commands";
    private static readonly XNamespace Data = "jabber:x:data";

    private readonly FakePublishHandler _publish = new();
    private readonly FakeRegistrationHandler _registration = new();

    private StanzaRouter Router => new(_publish, _registration, NullLogger<StanzaRouter>.Instance);

    private static XElement Iq(string type, string payload, string from = "alice@example.org/phone") =>
        XElement.Parse($"<iq xmlns='jabber:component:accept' type='{type}' id='q1' to='push.example.org' from='{from}'>{payload}</iq>");

    private static string RegisterForm(string node = "v1-register-push", params (string Var, string Value)[] fields) =>
        $"<command xmlns='http://jabber.org/protocol/commands' node='{node}' action='execute'>" +
        "<x xmlns='jabber:x:data' type='submit'>" +
        string.Concat(fields.Select(f => $"<field var='{f.Var}'><value>{f.Value}</value></field>")) + "</x></command>";

    [Fact]
    public async Task RouteAsync_Should_AnswerEmptyResult_When_PingArrives()
    {
        var reply = await Router.RouteAsync(Iq("get", "<ping xmlns='urn:xmpp:ping'/>"), CancellationToken.None);

        FakeComponentSession.AssertIq(reply!, "q1", "result");
        Assert.Empty(reply!.Elements());
        Assert.Equal("alice@example.org/phone", (string?)reply.Attribute("to"));
        Assert.Equal("push.example.org", (string?)reply.Attribute("from"));
    }

    [Fact]
    public async Task RouteAsync_Should_AnnouncePushIdentityAndFeatures_When_DiscoInfoArrives()
    {
        var reply = await Router.RouteAsync(Iq("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"), CancellationToken.None);

        XNamespace disco = "http://jabber.org/protocol/disco#info";
        var query = reply!.Element(disco + "query")!;
        var identity = Assert.Single(query.Elements(disco + "identity"));
        Assert.Equal(("pubsub", "push"), ((string?)identity.Attribute("category"), (string?)identity.Attribute("type")));
        Assert.Equal(
            new[] { "http://jabber.org/protocol/commands", "http://jabber.org/protocol/disco#info", "urn:xmpp:ping", "urn:xmpp:push:0" },
            query.Elements(disco + "feature").Select(f => (string)f.Attribute("var")!).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task RouteAsync_Should_ListBothCommands_When_DiscoItemsAsksForCommandsNode()
    {
        var reply = await Router.RouteAsync(
            Iq("get", "<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/>"),
            CancellationToken.None);

        XNamespace items = "http://jabber.org/protocol/disco#items";
        Assert.Equal(
            new[] { "v1-register-push", "v1-unregister-push" },
            reply!.Descendants(items + "item").Select(i => (string)i.Attribute("node")!));
        Assert.All(reply.Descendants(items + "item"), i => Assert.Equal("push.example.org", (string?)i.Attribute("jid")));
    }

    [Fact]
    public async Task RouteAsync_Should_SendTheFormToFill_When_CommandCarriesNoForm()
    {
        var reply = await Router.RouteAsync(
            Iq("set", "<command xmlns='http://jabber.org/protocol/commands' node='v1-register-push' action='execute'/>"),
            CancellationToken.None);

        var command = reply!.Element(Commands + "command")!;
        Assert.Equal("executing", (string?)command.Attribute("status"));
        Assert.False(string.IsNullOrEmpty((string?)command.Attribute("sessionid")));
        Assert.Equal(new[] { "type", "node", "token" },
            command.Element(Data + "x")!.Elements(Data + "field").Select(f => (string)f.Attribute("var")!));
        Assert.Empty(_registration.Calls);
    }

    [Fact]
    public async Task RouteAsync_Should_RegisterWithDomainOnlyAndReturnSecret_When_RegisterFormIsSubmitted()
    {
        var reply = await Router.RouteAsync(
            Iq("set", RegisterForm(fields: [("type", "apns"), ("node", "uuid-1"), ("token", "tok")])), CancellationToken.None);

        Assert.Equal(("register", "apns", "uuid-1", "tok", "example.org"), Assert.Single(_registration.Calls));
        var command = reply!.Element(Commands + "command")!;
        Assert.Equal("complete", (string?)command.Attribute("status"));
        var form = command.Element(Data + "x")!;
        Assert.Equal("result", (string?)form.Attribute("type"));
        string? Field(string name) => form.Elements(Data + "field").Single(f => (string?)f.Attribute("var") == name).Element(Data + "value")?.Value;
        Assert.Equal("uuid-1", Field("node"));
        Assert.Equal("the-secret", Field("secret"));
    }

    [Fact]
    public async Task RouteAsync_Should_Unregister_When_UnregisterFormIsSubmitted()
    {
        var reply = await Router.RouteAsync(
            Iq("set", RegisterForm("v1-unregister-push", ("type", "apns"), ("node", "uuid-1"))), CancellationToken.None);

        Assert.Equal(("unregister", "apns", "uuid-1", null, "example.org"), Assert.Single(_registration.Calls));
        Assert.Equal("complete", (string?)reply!.Element(Commands + "command")!.Attribute("status"));
    }

    [Fact]
    public async Task RouteAsync_Should_AnswerBadRequest_When_RegisterFormLacksToken()
    {
        var reply = await Router.RouteAsync(Iq("set", RegisterForm(fields: [("type", "apns"), ("node", "uuid-1")])), CancellationToken.None);

        FakeComponentSession.AssertIqError(reply!, "q1", "modify", "bad-request");
        Assert.Empty(_registration.Calls);
    }

    [Fact]
    public async Task RouteAsync_Should_AnswerNotAcceptableWithText_When_RegistrationHandlerRefuses()
    {
        _registration.Answer = () => RegistrationResult.Error("Unknown push type");

        var reply = await Router.RouteAsync(
            Iq("set", RegisterForm(fields: [("type", "fcm"), ("node", "uuid-1"), ("token", "tok")])), CancellationToken.None);

        FakeComponentSession.AssertIqError(reply!, "q1", "modify", "not-acceptable");
        Assert.Equal("Unknown push type", reply!.Descendants(XName.Get("text", Namespaces.Stanzas)).Single().Value);
    }

    [Fact]
    public async Task RouteAsync_Should_AnswerItemNotFound_When_CommandIsUnknown()
    {
        var reply = await Router.RouteAsync(
            Iq("set", "<command xmlns='http://jabber.org/protocol/commands' node='reboot' action='execute'/>"), CancellationToken.None);

        FakeComponentSession.AssertIqError(reply!, "q1", "cancel", "item-not-found");
    }

    [Theory]
    [InlineData("get", "<vCard xmlns='vcard-temp'/>")]
    [InlineData("set", "<query xmlns='jabber:iq:register'/>")]
    [InlineData("get", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='x'/></pubsub>")]
    public async Task RouteAsync_Should_AnswerServiceUnavailable_When_IqIsUnknown(string type, string payload)
    {
        var reply = await Router.RouteAsync(Iq(type, payload), CancellationToken.None);

        FakeComponentSession.AssertIqError(reply!, "q1", "cancel", "service-unavailable");
    }

    [Theory]
    [InlineData("<iq xmlns='jabber:component:accept' type='result' id='r1' from='example.org'/>")]
    [InlineData("<iq xmlns='jabber:component:accept' type='error' id='r1' from='example.org'><error type='cancel'/></iq>")]
    [InlineData("<message xmlns='jabber:component:accept' from='example.org'><body>hi</body></message>")]
    [InlineData("<presence xmlns='jabber:component:accept' from='example.org'/>")]
    public async Task RouteAsync_Should_StaySilent_When_StanzaNeedsNoAnswer(string xml)
    {
        Assert.Null(await Router.RouteAsync(XElement.Parse(xml), CancellationToken.None));
    }

    [Fact]
    public async Task RouteAsync_Should_AnswerBadRequest_When_PublishHasNoItem()
    {
        var reply = await Router.RouteAsync(
            Iq("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'/></pubsub>"), CancellationToken.None);

        FakeComponentSession.AssertIqError(reply!, "q1", "modify", "bad-request");
        Assert.Empty(_publish.Received);
    }

    [Fact]
    public async Task RouteAsync_Should_PassDomainOnlyToHandler_When_PublishComesFromUserJid()
    {
        var reply = await Router.RouteAsync(
            Iq("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item/></publish></pubsub>"),
            CancellationToken.None);

        FakeComponentSession.AssertIq(reply!, "q1", "result");
        Assert.Equal("example.org", Assert.Single(_publish.Received).FromDomain);
    }
}
