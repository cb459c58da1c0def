using System.Net;
using System.Xml.Linq;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Monal.Push.Ingest.Registering;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Events;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

[Trait("Category", "Postgres")]
public sealed class RegistrationTests
{
    private static async Task<(WebApplication App, HttpClient Client)> StartHttpAsync(IngestHarness ingest)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(ingest.Registration);
        builder.Services.AddSingleton(ingest.Hash);
        var app = builder.Build();
        app.MapRegistration();
        await app.StartAsync();
        return (app, new HttpClient { BaseAddress = new Uri(app.Urls.First()) });
    }

    private static async Task<(HttpStatusCode Status, string Body, string? ContentType)> PostAsync(
        HttpClient client, string path, params (string Key, string Value)[] fields)
    {
        using var content = new FormUrlEncodedContent(fields.Select(f => KeyValuePair.Create(f.Key, f.Value)));
        using var response = await client.PostAsync(new Uri(path, UriKind.Relative), content);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData("/v1")]
    [InlineData("/push_appserver/v1")]
    public async Task Register_Should_AnswerNodeAndSecretAndKeepTheSecret_When_TheSameNodeRegistersAgainOverHttp(string prefix)
    {
        await using var ingest = await IngestHarness.CreateAsync();
        var (app, client) = await StartHttpAsync(ingest);
        await using var _ = app;
        using var __ = client;
        var node = Guid.NewGuid().ToString();
        var token = IngestHarness.NewToken();
        var newToken = IngestHarness.NewToken();

        var first = await PostAsync(client, prefix + "/register", ("type", "apns"), ("node", node), ("token", token));
        var again = await PostAsync(client, prefix + "/register", ("type", "apns"), ("node", node), ("token", newToken));

        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal("text/plain", first.ContentType);
        var lines = first.Body.Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.Equal("OK", lines[0]);
        Assert.Equal(node, lines[1]);
        var secret = lines[2];
        Assert.Equal(43, secret.Length); // 32 random bytes, base64url without padding
        Assert.Equal(first.Body, again.Body);

        var id = Guid.Parse(node);
        var events = await ingest.EventsAsync(id);
        var registered = Assert.IsType<DeviceRegistered>(events[0]);
        var renewed = Assert.IsType<RegistrationRenewed>(events[1]);
        Assert.Equal(DeviceMode.Registered, registered.Mode);
        Assert.Equal(IngestHarness.Module, registered.PushModule);
        Assert.Null(registered.Domain);
        Assert.True(ingest.Hash.SecretMatches(secret, registered.SecretHash!));
        // The token was replaced: the key generation it was encrypted with is gone (RenewalTests covers the rest).
        await Assert.ThrowsAsync<DataKeyShreddedException>(() => ingest.Keys.DecryptAsync(id, registered.EncryptedToken));
        Assert.Equal(secret, await ingest.Keys.DecryptAsync(id, renewed.EncryptedSecret!));
        Assert.Equal(newToken, await ingest.Keys.DecryptAsync(id, renewed.EncryptedToken));
        foreach (var table in new[] { "events", "devices" })
        {
            Assert.Equal(0, await ingest.RowsContainingAsync(table, secret));
            Assert.Equal(0, await ingest.RowsContainingAsync(table, token));
            Assert.Equal(0, await ingest.RowsContainingAsync(table, newToken));
        }

        var publish = await ingest.Publish.HandleAsync(IngestHarness.Registered(node, secret), CancellationToken.None);
        Assert.True(publish.IsAccepted);
    }

    [Fact]
    public async Task Unregister_Should_AnswerOkAndRefuseLaterPublishes_When_NodeIsRegistered()
    {
        await using var ingest = await IngestHarness.CreateAsync();
        var (app, client) = await StartHttpAsync(ingest);
        await using var _ = app;
        using var __ = client;
        var (id, secret) = await ingest.RegisterAsync();

        var reply = await PostAsync(client, "/v1/unregister", ("type", "apns"), ("node", id.ToString()));

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal("OK\n", reply.Body);
        Assert.IsType<DeviceUnregistered>((await ingest.EventsAsync(id))[^1]);
        var publish = await ingest.Publish.HandleAsync(IngestHarness.Registered(id.ToString(), secret), CancellationToken.None);
        Assert.Equal(Monal.Push.Ingest.Stanzas.PublishOutcome.ItemNotFound, publish);
    }

    [Theory]
    [InlineData("/v1/register", "type=apns&node={node}", HttpStatusCode.BadRequest, "ERROR\nMissing parameters!\n")]
    [InlineData("/v1/register", "type=fcm&node={node}&token={token}", HttpStatusCode.BadRequest, "ERROR\nUnknown push type!\n")]
    [InlineData("/v1/register", "type=apns&node=not-a-uuid&token={token}", HttpStatusCode.BadRequest, "ERROR\nInvalid node!\n")]
    [InlineData("/v1/register", "type=apns&node={node}&token=xyz", HttpStatusCode.BadRequest, "ERROR\nInvalid token!\n")]
    [InlineData("/v1/unregister", "type=apns", HttpStatusCode.BadRequest, "ERROR\nMissing parameters!\n")]
    [InlineData("/v1/unregister", "type=apns&node={node}", HttpStatusCode.NotFound, "ERROR\nNode not found!\n")]
    public async Task Register_Should_AnswerErrorText_When_TheRequestIsRefused(string path, string form, HttpStatusCode status, string body)
    {
        await using var ingest = await IngestHarness.CreateAsync();
        var (app, client) = await StartHttpAsync(ingest);
        await using var _ = app;
        using var __ = client;
        var node = Guid.NewGuid();
        using var content = new StringContent(
            form.Replace("{node}", node.ToString()).Replace("{token}", IngestHarness.NewToken()),
            System.Text.Encoding.UTF8, "application/x-www-form-urlencoded");

        using var response = await client.PostAsync(new Uri(path, UriKind.Relative), content);

        Assert.Equal(status, response.StatusCode);
        Assert.Equal(body, await response.Content.ReadAsStringAsync());
        Assert.Empty(await ingest.EventsAsync(node));
    }

    [Fact]
    public async Task Register_Should_AnswerBadRequest_When_TheBodyIsNotAForm()
    {
        await using var ingest = await IngestHarness.CreateAsync();
        var (app, client) = await StartHttpAsync(ingest);
        await using var _ = app;
        using var __ = client;
        using var content = new StringContent("{\"type\":\"apns\"}", System.Text.Encoding.UTF8, "application/json");

        using var response = await client.PostAsync(new Uri("/v1/register", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith("ERROR\n", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task AdHoc_Should_RegisterPublishAndUnregister_When_CommandsArriveOverTheComponentLink()
    {
        await using var ingest = await IngestHarness.CreateAsync();
        await using var component = await LiveComponent.StartAsync(ingest);
        var session = component.Session;
        var node = Guid.NewGuid().ToString();
        var token = IngestHarness.NewToken();

        await session.Write(Command("r1", "v1-register-push", ("type", "apns"), ("node", node), ("token", token))).FlushAsync();
        var registered = await session.ExpectIqResultAsync("r1");
        var form = Form(registered);
        Assert.Equal(node, form["node"]);
        Assert.Equal("push.localhost", form["jid"]);
        var secret = form["secret"];

        await session.Write(Command("r2", "v1-register-push", ("type", "apns"), ("node", node), ("token", token))).FlushAsync();
        Assert.Equal(secret, Form(await session.ExpectIqResultAsync("r2"))["secret"]);

        await session.Write(Publish("p1", node, secret)).FlushAsync();
        await session.ExpectIqResultAsync("p1");
        await session.Write(Publish("p2", node, "wrong")).FlushAsync();
        await session.ExpectIqErrorAsync("p2", "auth", "not-authorized");

        await session.Write(Command("u1", "v1-unregister-push", ("type", "apns"), ("node", node))).FlushAsync();
        await session.ExpectIqResultAsync("u1");
        await session.Write(Publish("p3", node, secret)).FlushAsync();
        await session.ExpectIqErrorAsync("p3", "cancel", "item-not-found");

        await session.Write(Command("r3", "v1-register-push", ("type", "apns"), ("node", "not-a-uuid"), ("token", token))).FlushAsync();
        await session.ExpectIqErrorAsync("r3", "modify", "not-acceptable");

        var events = await ingest.EventsAsync(Guid.Parse(node));
        Assert.Equal("localhost", Assert.IsType<DeviceRegistered>(events[0]).Domain);
        Assert.Single(events.OfType<PushRequested>());
        Assert.Equal(0, await ingest.RowsContainingAsync("events", "alice"));
    }

    [Fact]
    public async Task AdHoc_Should_AnswerWhatMonal51Accepts_When_AnIdentifierForVendorNodeRegistersAndUnregisters()
    {
        await using var ingest = await IngestHarness.CreateAsync();
        await using var component = await LiveComponent.StartAsync(ingest);
        var session = component.Session;
        var node = Guid.NewGuid().ToString().ToUpperInvariant(); // identifierForVendor's UUIDString is upper case
        var token = IngestHarness.NewToken();

        await session.Write(Command("r1", "v1-register-push", ("type", "apns"), ("node", node), ("token", token))).FlushAsync();
        var registered = Monal51ReplyForm(await session.ExpectIqResultAsync("r1"), "v1-register-push");
        await session.Write(Command("u1", "v1-unregister-push", ("type", "apns"), ("node", node))).FlushAsync();
        var unregistered = Monal51ReplyForm(await session.ExpectIqResultAsync("u1"), "v1-unregister-push");

        Assert.NotNull(registered);
        Assert.Equal("push.localhost", registered["jid"]);
        Assert.Equal(node, registered["node"]);
        Assert.Equal(43, registered["secret"].Length);
        Assert.NotNull(unregistered);
        Assert.Equal(new[] { "jid", "node" }, unregistered.Keys);
        Assert.Equal(node, unregistered["node"]);
    }

    /// <summary>
    /// The reply form as Monal 5.1 finds it (MLIQProcessor.m line 531 at commit 25201ae1):
    /// <c>{http://jabber.org/protocol/commands}command&lt;status=complete&gt;&lt;node=…&gt;/{jabber:x:data}x</c>, where
    /// MLXMLNode.m compiles each attribute filter to an anchored regex (<c>^complete$</c>); null when Monal finds none.
    /// </summary>
    private static Dictionary<string, string>? Monal51ReplyForm(XElement iq, string commandNode)
    {
        XNamespace x = "jabber:x:data";
        static bool Matches(XElement e, string attribute, string value) =>
            System.Text.RegularExpressions.Regex.IsMatch((string?)e.Attribute(attribute) ?? "", "^" + value + "$");
        var form = iq.Elements(XName.Get("command", "http://jabber.org/protocol/commands"))
            .Where(c => Matches(c, "status", "complete") && Matches(c, "node", commandNode))
            .Elements(x + "x")
            .FirstOrDefault();
        return form?.Elements(x + "field")
            .ToDictionary(f => (string)f.Attribute("var")!, f => (string?)f.Element(x + "value") ?? "");
    }

    private static string Command(string id, string command, params (string Var, string Value)[] fields) =>
        $"<iq type='set' id='{id}' from='alice@localhost/monal' to='push.localhost'>" +
        $"<command xmlns='http://jabber.org/protocol/commands' node='{command}' action='execute'>" +
        "<x xmlns='jabber:x:data' type='submit'>" +
        string.Concat(fields.Select(f => $"<field var='{f.Var}'><value>{f.Value}</value></field>")) +
        "</x></command></iq>";

    internal static string Publish(string id, string node, string? secret = null, string? pushModule = null) =>
        $"<iq type='set' id='{id}' from='localhost' to='push.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'>" +
        $"<publish node='{node}'><item><notification xmlns='urn:xmpp:push:0'/></item></publish>" +
        "<publish-options><x xmlns='jabber:x:data' type='submit'>" +
        "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
        (secret is null ? "" : $"<field var='secret'><value>{secret}</value></field>") +
        (pushModule is null ? "" : $"<field var='pushModule'><value>{pushModule}</value></field>") +
        "</x></publish-options></pubsub></iq>";

    private static Dictionary<string, string> Form(XElement iq)
    {
        XNamespace x = "jabber:x:data";
        var command = iq.Element(XName.Get("command", "http://jabber.org/protocol/commands"));
        Assert.NotNull(command);
        Assert.Equal("complete", (string?)command.Attribute("status"));
        return command.Element(x + "x")!.Elements(x + "field")
            .ToDictionary(f => (string)f.Attribute("var")!, f => (string?)f.Element(x + "value") ?? "");
    }
}
