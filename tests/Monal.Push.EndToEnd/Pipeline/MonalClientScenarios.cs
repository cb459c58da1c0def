using System.Xml.Linq;
using Monal.Push.Demo.Chatting;
using static Monal.Push.EndToEnd.Pipeline.PipelineScenarios;

namespace Monal.Push.EndToEnd.Pipeline;

/// <summary>
/// What real Monal builds send to their own XMPP server, byte for byte in shape (docs/peers.md, "Real Monal clients";
/// the same stanzas as tests/Monal.Push.Tests/Fixtures/Captures/monal-clients.fixtures.xml), run through a real
/// Prosody or ejabberd into the whole pipeline. The pipeline's default push module (Ingest:DefaultPushModule) is
/// <see cref="PushPipeline.Module"/>.
/// </summary>
internal static class MonalClientScenarios
{
    private static readonly XNamespace Push = "urn:xmpp:push:0";
    private static readonly XNamespace Data = "jabber:x:data";
    private static readonly XNamespace Commands = "http://jabber.org/protocol/commands";

    /// <summary>Monal 6.x (and 5.3.0+): node = the lower-case hex token, a hidden FORM_TYPE and pushModule (XMPPIQ.m:66-96).</summary>
    public static async Task Monal6EnableAsync(PipelineFixture fixture)
    {
        var token = NewToken();
        var enable = new XElement(Push + "enable", new XAttribute("jid", fixture.Server.ComponentDomain), new XAttribute("node", token),
            new XElement(Data + "x", new XAttribute("type", "submit"),
                new XElement(Data + "field", new XAttribute("type", "hidden"), new XAttribute("var", "FORM_TYPE"),
                    new XElement(Data + "value", "http://jabber.org/protocol/pubsub#publish-options")),
                new XElement(Data + "field", new XAttribute("var", "pushModule"), new XElement(Data + "value", PushPipeline.Module))));

        await EnableThenMessageAsync(fixture, enable);

        await AssertDeliveredAsync(fixture.Pipeline, await fixture.Pipeline.WaitForApnsRequestAsync(token));
    }

    /// <summary>Monal 5.2.0: <c>&lt;enable jid=… node=token/&gt;</c> with no form at all (XMPPIQ.m:62-69 at Build_iOS_793).</summary>
    public static async Task Monal520EnableWithoutFormAsync(PipelineFixture fixture)
    {
        var token = NewToken();
        var enable = new XElement(Push + "enable", new XAttribute("jid", fixture.Server.ComponentDomain), new XAttribute("node", token));

        await EnableThenMessageAsync(fixture, enable);

        await AssertDeliveredAsync(fixture.Pipeline, await fixture.Pipeline.WaitForApnsRequestAsync(token));
    }

    /// <summary>
    /// Monal 5.0–5.1: the ad-hoc command v1-register-push to the push server (through the user's server), with the
    /// upper-case identifierForVendor as node; the reply must say status='complete' with jid, node and secret
    /// (MLIQProcessor.m:531 at 25201ae1), then push is enabled with that node and secret (XMPPIQ.m:89-99).
    /// </summary>
    public static async Task Monal51AdHocRegistrationAsync(PipelineFixture fixture)
    {
        var token = NewToken();
        await RegisterOverAdHocThenMessageAsync(fixture, token, Guid.NewGuid().ToString().ToUpperInvariant(), "hello 5.1");

        await AssertDeliveredAsync(fixture.Pipeline, await fixture.Pipeline.WaitForApnsRequestAsync(token));
    }

    /// <summary>
    /// A registration that ends takes its token with it: Monal 5.0–5.1 registers with the ad-hoc command, gets a push,
    /// then unregisters with v1-unregister-push; after the hourly device job the token is in neither a full database
    /// dump (not even encrypted: the stream and its data key are gone) nor the log files.
    /// </summary>
    public static async Task AdHocUnregisterThenPurgeAsync(PipelineFixture fixture)
    {
        var server = fixture.Server;
        var pipeline = fixture.Pipeline;
        var token = NewToken();
        var deviceUuid = Guid.NewGuid().ToString().ToUpperInvariant();
        var alice = await RegisterOverAdHocThenMessageAsync(fixture, token, deviceUuid, "before unregistering");

        await AssertDeliveredAsync(pipeline, await pipeline.WaitForApnsRequestAsync(token));
        var device = Guid.Parse(deviceUuid);
        var cipher = await pipeline.TextAsync(
            "select data->>'encrypted_token' from events where stream_id = $1 and type = 'device_registered.v1'", device);
        Assert.False(string.IsNullOrEmpty(cipher));
        Assert.Contains(cipher, await pipeline.DumpDatabaseAsync(), StringComparison.Ordinal); // the dump would show it

        await using (var a = await TinyXmppClient.ConnectAsync(server, alice, "pw-a"))
        {
            var unregistered = await AdHocAsync(a, server.ComponentDomain, "v1-unregister-push", Field("type", "apns"), Field("node", deviceUuid));
            Assert.Equal(deviceUuid, Value(unregistered, "node"));
            await a.DisconnectAsync();
        }

        await pipeline.WaitForCountAsync(1, "select count(*) from devices where device_id = $1 and unregistered_at is not null", device);
        await pipeline.RunRetentionJobAsync("invalid-tokens");

        var dump = await pipeline.DumpDatabaseAsync();
        var logs = pipeline.ReadLogFiles();
        Assert.DoesNotContain(token, dump, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(cipher, dump, StringComparison.Ordinal);
        Assert.DoesNotContain(device.ToString(), dump, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(token, logs, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, await pipeline.CountAsync("select count(*) from data_keys where device_id = $1", device));
    }

    /// <summary>
    /// Apple answers 410 with its real timestamp (in the past: when the token stopped being valid). The device is
    /// invalidated and erased by the hourly job; the next publishes are answered item-not-found and never reach Apple.
    /// </summary>
    public static async Task DeadTokenStaysDeadAsync(PipelineFixture fixture)
    {
        var pipeline = fixture.Pipeline;
        var token = NewToken();
        pipeline.Apns.RespondToToken(token, 410, "Unregistered", DateTimeOffset.UtcNow.AddDays(-2));
        var options = new Dictionary<string, string> { ["pushModule"] = PushPipeline.Module };

        var (recipient, _) = await MessageOfflineUserAsync(fixture, token, options, "first");
        var apnsId = (await pipeline.WaitForApnsRequestAsync(token)).Header("apns-id")!;
        await pipeline.WaitForCountAsync(1,
            "select count(*) from events where type = 'token_invalidated.v1' and data->>'push_id' = $1", apnsId);
        await pipeline.RunRetentionJobAsync("invalid-tokens");
        Assert.Equal(1, await pipeline.CountAsync("select count(*) from dead_tokens"));

        var carol = NewUser("carol");
        await fixture.Server.CreateUserAsync(carol, "pw");
        await using var c = await TinyXmppClient.ConnectAsync(fixture.Server, carol, "pw");
        var refusals = await pipeline.ItemNotFoundRepliesAsync();
        await c.SendMessageAsync(recipient, "second");
        await PushPipeline.WaitUntilAsync(async () => await pipeline.ItemNotFoundRepliesAsync() > refusals, "an item-not-found reply");

        Assert.Single(pipeline.Apns.Requests, r => string.Equals(r.DeviceToken, token, StringComparison.OrdinalIgnoreCase));
        Assert.Equal(0, await pipeline.CountAsync("select count(*) from streams where id in (select device_id from dead_tokens)"));
    }

    private static async Task EnableThenMessageAsync(PipelineFixture fixture, XElement enable)
    {
        var server = fixture.Server;
        var alice = NewUser("alice");
        var bob = NewUser("bob");
        await server.CreateUserAsync(alice, "pw-a");
        await server.CreateUserAsync(bob, "pw-b");
        await using (var a = await TinyXmppClient.ConnectAsync(server, alice, "pw-a"))
        {
            await a.SendIqAsync("set", enable);
            await a.DisconnectAsync();
        }

        await using var b = await TinyXmppClient.ConnectAsync(server, bob, "pw-b");
        await b.SendMessageAsync($"{alice}@{server.Domain}", "hello");
    }

    /// <summary>
    /// What Monal 5.0–5.1 does: a new user registers <paramref name="deviceUuid"/> with the ad-hoc command; the reply must
    /// say status='complete' with jid, node and secret (MLIQProcessor.m:531 at 25201ae1); push is enabled with that node
    /// and secret (XMPPIQ.m:89-99); then another user messages the first while it is offline. Returns the first user.
    /// </summary>
    private static async Task<string> RegisterOverAdHocThenMessageAsync(PipelineFixture fixture, string token, string deviceUuid, string body)
    {
        var server = fixture.Server;
        var alice = NewUser("alice");
        var bob = NewUser("bob");
        await server.CreateUserAsync(alice, "pw-a");
        await server.CreateUserAsync(bob, "pw-b");
        await using (var a = await TinyXmppClient.ConnectAsync(server, alice, "pw-a"))
        {
            // The exact filter Monal 5.1 applies: command<status=complete><node=v1-register-push>/x.
            var form = await AdHocAsync(a, server.ComponentDomain, "v1-register-push",
                Field("type", "apns"), Field("node", deviceUuid), Field("token", token));
            var jid = Value(form, "jid");
            var node = Value(form, "node");
            var secret = Value(form, "secret");
            Assert.Equal(server.ComponentDomain, jid);
            Assert.Equal(deviceUuid, node);
            Assert.False(string.IsNullOrEmpty(secret));

            await a.SendIqAsync("set", new XElement(Push + "enable", new XAttribute("jid", jid!), new XAttribute("node", node!),
                new XElement(Data + "x", new XAttribute("type", "submit"),
                    new XElement(Data + "field", new XAttribute("type", "hidden"), new XAttribute("var", "FORM_TYPE"),
                        new XElement(Data + "value", "http://jabber.org/protocol/pubsub#publish-options")),
                    Field("secret", secret!))));
            await a.DisconnectAsync();
        }

        await using var b = await TinyXmppClient.ConnectAsync(server, bob, "pw-b");
        await b.SendMessageAsync($"{alice}@{server.Domain}", body);
        return alice;
    }

    // Runs an ad-hoc command as Monal 5.0–5.1 does and returns the form of its status='complete' reply.
    private static async Task<XElement> AdHocAsync(TinyXmppClient client, string to, string node, params XElement[] fields)
    {
        var command = new XElement(Commands + "command", new XAttribute("node", node), new XAttribute("action", "execute"),
            new XElement(Data + "x", new XAttribute("type", "submit"),
                new XElement(Data + "field", new XAttribute("type", "hidden"), new XAttribute("var", "FORM_TYPE"),
                    new XElement(Data + "value", $"https://github.com/tmolitor-stud-tu/mod_push_appserver/#{node}")),
                fields));
        var reply = await client.SendIqAsync("set", command, to);
        return reply.Elements(Commands + "command")
            .Single(c => (string?)c.Attribute("status") == "complete" && (string?)c.Attribute("node") == node)
            .Element(Data + "x")!;
    }

    private static XElement Field(string name, string value) =>
        new(Data + "field", new XAttribute("var", name), new XElement(Data + "value", value));

    private static string? Value(XElement form, string name) =>
        form.Elements(Data + "field").FirstOrDefault(f => (string?)f.Attribute("var") == name)?.Element(Data + "value")?.Value;
}
