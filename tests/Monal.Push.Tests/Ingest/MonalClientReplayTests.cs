using System.Security.Cryptography;
using System.Xml.Linq;
using Monal.Push.Ledger.Events;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

/// <summary>
/// Replays every stanza of Fixtures/Captures/monal-clients.fixtures.xml that reaches the push component (what
/// Prosody and ejabberd publish for Monal 6.x, 5.2.0 and 5.0–5.1, and the ad-hoc registration of Monal 5.0–5.1)
/// over the real component link into the real handlers, and checks the reply each real server and client needs.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class MonalClientReplayTests
{
    private const string FixtureFile = "monal-clients.fixtures.xml";
    private const string UserDomain = "example.org";

    /// <summary>What each fixture sent to the component must be answered with (with Ingest:DefaultPushModule set).</summary>
    private static readonly Dictionary<string, string> Expected = new(StringComparer.Ordinal)
    {
        ["prosody-publish-monal6"] = "result",
        ["prosody-publish-monal6-unimportant"] = "result",
        ["ejabberd-publish-monal6"] = "result",
        ["ejabberd-publish-monal6-no-summary"] = "result",
        ["prosody-publish-no-publish-options"] = "result",
        ["ejabberd-publish-no-publish-options"] = "result",
        ["monal51-adhoc-register"] = "result",
        ["prosody-publish-monal51-secret"] = "result",
        ["ejabberd-publish-monal51-secret"] = "result",
    };

    public static TheoryData<string> ToComponent()
    {
        var data = new TheoryData<string>();
        foreach (var id in ToComponentIds())
        {
            data.Add(id);
        }

        return data;
    }

    private static IEnumerable<string> ToComponentIds() =>
        Fixtures().Where(f => ((string?)f.Attribute("direction"))!.EndsWith("to-component", StringComparison.Ordinal))
            .Select(f => (string)f.Attribute("id")!);

    [Fact]
    public void Fixtures_Should_AllHaveAnExpectedReply_When_TheyReachTheComponent()
    {
        Assert.Equal(Expected.Keys.Order(StringComparer.Ordinal), ToComponentIds().Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(ToComponent))]
    public async Task Replay_Should_AnswerWhatTheRealServerNeeds_When_TheFixtureArrivesOnTheComponentLink(string fixtureId)
    {
        await using var ingest = await IngestHarness.CreateAsync(defaultModule: IngestHarness.Module);
        await using var component = await LiveComponent.StartAsync(ingest);
        var values = Placeholders();
        if (fixtureId.Contains("monal51-secret", StringComparison.Ordinal))
        {
            // Monal 5.0–5.1 registered through the ad-hoc command first and enabled push with the secret it got.
            values["${SECRET}"] = await RegisterAsync(component.Session, values);
        }

        var sent = Render(fixtureId, values);
        var reply = await SendAsync(component.Session, sent);

        Assert.Equal(Expected[fixtureId], (string?)reply.Attribute("type"));
        // Prosody counts an error only when its from equals the JID the client enabled (mod_cloud_notify.lua:93),
        // and both servers match replies by id: the reply is addressed back exactly.
        Assert.Equal((string?)sent.Attribute("id"), (string?)reply.Attribute("id"));
        Assert.Equal((string?)sent.Attribute("from"), (string?)reply.Attribute("to"));
        Assert.Equal((string?)sent.Attribute("to"), (string?)reply.Attribute("from"));
        if (fixtureId == "monal51-adhoc-register")
        {
            AssertMonal51AcceptsTheRegistration(reply, values["${DEVICE_UUID}"]);
            return;
        }

        var device = fixtureId.Contains("monal51", StringComparison.Ordinal)
            ? Guid.Parse(values["${DEVICE_UUID}"])
            : ingest.StatelessId(values["${TOKEN}"]);
        var pushes = await ingest.PushesAsync(device);
        Assert.Equal(UserDomain, Assert.Single(pushes).Domain);
    }

    [Theory]
    [InlineData("prosody-publish-no-publish-options")]
    [InlineData("ejabberd-publish-no-publish-options")]
    public async Task Replay_Should_AnswerModifyBadRequestNamingTheSetting_When_NoDefaultPushModuleIsSet(string fixtureId)
    {
        // Never cancel: ejabberd drops the user's push registration at the first non-wait error.
        await using var ingest = await IngestHarness.CreateAsync();
        await using var component = await LiveComponent.StartAsync(ingest);
        var values = Placeholders();

        var reply = await SendAsync(component.Session, Render(fixtureId, values));

        FakeComponentSession.AssertIqError(reply, (string)reply.Attribute("id")!, "modify", "bad-request");
        Assert.Contains("Ingest:DefaultPushModule", reply.ToString(), StringComparison.Ordinal);
        Assert.Empty(await ingest.EventsAsync(ingest.StatelessId(values["${TOKEN}"])));
    }

    /// <summary>
    /// Monal 5.0–5.1 (MLIQProcessor.m:531 at 25201ae1) looks for
    /// <c>{http://jabber.org/protocol/commands}command&lt;status=complete&gt;&lt;node=v1-register-push&gt;/{jabber:x:data}x</c>,
    /// an anchored match, then reads the form's jid, node and secret and enables push with them.
    /// </summary>
    private static void AssertMonal51AcceptsTheRegistration(XElement reply, string deviceUuid)
    {
        XNamespace commands = "http://jabber.org/protocol/commands";
        XNamespace data = "jabber:x:data";
        var command = Assert.Single(reply.Elements(commands + "command"));
        Assert.Equal("complete", (string?)command.Attribute("status"));
        Assert.Equal("v1-register-push", (string?)command.Attribute("node"));
        var form = Assert.Single(command.Elements(data + "x"));
        string? Field(string name) => form.Elements(data + "field").FirstOrDefault(f => (string?)f.Attribute("var") == name)
            ?.Element(data + "value")?.Value;
        Assert.False(string.IsNullOrEmpty(Field("jid")));
        Assert.Equal(deviceUuid, Field("node"));
        Assert.False(string.IsNullOrEmpty(Field("secret")));
    }

    private static async Task<string> RegisterAsync(FakeComponentSession session, Dictionary<string, string> values)
    {
        var reply = await SendAsync(session, Render("monal51-adhoc-register", values));
        XNamespace commands = "http://jabber.org/protocol/commands";
        XNamespace data = "jabber:x:data";
        return reply.Element(commands + "command")!.Element(data + "x")!.Elements(data + "field")
            .Single(f => (string?)f.Attribute("var") == "secret").Element(data + "value")!.Value;
    }

    private static async Task<XElement> SendAsync(FakeComponentSession session, XElement stanza)
    {
        await session.Write(stanza.ToString(SaveOptions.DisableFormatting)).FlushAsync();
        return await session.ExpectStanzaAsync();
    }

    private static Dictionary<string, string> Placeholders() => new(StringComparer.Ordinal)
    {
        // Monal writes the token as lowercase hex, "%02x" per byte (HelperTools.m:1609-1619).
        ["${TOKEN}"] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)),
        // identifierForVendor.UUIDString: upper case.
        ["${DEVICE_UUID}"] = Guid.NewGuid().ToString().ToUpperInvariant(),
        ["${USER_DOMAIN}"] = UserDomain,
        ["${USER}"] = "alice",
        ["${RESOURCE}"] = "Monal-iOS.1a2b",
        ["${CLIENT_IQ_ID}"] = Guid.NewGuid().ToString().ToUpperInvariant(),
        ["${PROSODY_ID}"] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)),
        // ejabberd_iq.erl: rr-<expire>-<rnd>-<base64 sha1>-<node hash>, with + / = in it.
        ["${EJABBERD_ID}"] = "rr-1733400000-" + Random.Shared.Next() + "-q+W/e=r-" + Random.Shared.Next(),
        ["${ANY_UUID}"] = Guid.NewGuid().ToString(),
    };

    private static XElement Render(string fixtureId, Dictionary<string, string> values)
    {
        var fixture = Fixtures().Single(f => (string?)f.Attribute("id") == fixtureId);
        var xml = fixture.Elements().Single().ToString(SaveOptions.DisableFormatting);
        foreach (var (name, value) in values)
        {
            xml = xml.Replace(name, System.Security.SecurityElement.Escape(value), StringComparison.Ordinal);
        }

        Assert.DoesNotContain("${", xml, StringComparison.Ordinal);
        return XElement.Parse(xml);
    }

    private static IEnumerable<XElement> Fixtures() =>
        XDocument.Parse(Captures.ReadText(FixtureFile)).Root!.Elements("fixture");
}
