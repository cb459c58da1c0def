using System.Diagnostics;
using System.Xml.Linq;
using Monal.Push.Ingest.Component;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Ledger.Events;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

[Trait("Category", "Postgres")]
public sealed class IngestFloodTests
{
    private static XElement Load(string capture)
    {
        var text = System.Text.Encoding.UTF8.GetString(Captures.Read(capture));
        return XElement.Parse(text.Replace("<iq ", "<iq xmlns='jabber:component:accept' ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RouteAsync_Should_NeverStoreBodyOrSender_When_CapturedPublishesAreAccepted()
    {
        await using var ingest = await IngestHarness.CreateAsync(window: TimeSpan.Zero);
        var router = new StanzaRouter(ingest.Publish, ingest.Registration,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<StanzaRouter>.Instance);
        XNamespace pubsub = "http://jabber.org/protocol/pubsub";
        XNamespace data = "jabber:x:data";
        var secrets = new List<string>();

        foreach (var capture in Captures.Names("*.iqs.xml"))
        {
            var iq = Load(capture);
            var summary = iq.Descendants(data + "field")
                .Where(f => (string?)f.Attribute("var") is "last-message-body" or "last-message-sender")
                .Select(f => (string?)f.Element(data + "value"))
                .OfType<string>()
                .Where(v => v.Length >= 5);
            secrets.AddRange(summary.Select(v => v.Split('\n')[0]));
            // Address the captured publish to a stateless device of ours (the capture's node is a placeholder).
            iq.Element(pubsub + "pubsub")!.Element(pubsub + "publish")!.SetAttributeValue("node", IngestHarness.NewToken());
            iq.Element(pubsub + "pubsub")!.Element(pubsub + "publish-options")?.Remove();
            iq.Element(pubsub + "pubsub")!.Add(new XElement(pubsub + "publish-options",
                DataForm.Build("submit", ("FORM_TYPE", "hidden", Namespaces.PublishOptionsFormType), ("pushModule", "text-single", IngestHarness.Module))));

            var reply = await router.RouteAsync(iq, CancellationToken.None);

            Assert.NotNull(reply);
            Assert.Equal("result", (string?)reply.Attribute("type"));
        }

        Assert.Contains("Hello from bob #1", secrets);
        Assert.Contains("bob@localhost/harness", secrets);
        foreach (var secret in secrets.Append("bob@localhost").Distinct())
        {
            foreach (var table in new[] { "events", "push_events", "devices", "push_log" })
            {
                Assert.Equal(0, await ingest.RowsContainingAsync(table, secret));
            }
        }
    }

    [Fact]
    public async Task Flood_Should_AnswerEveryPublishWithAFewPushes_When_TenThousandPublishesHitOneNode()
    {
        const int Count = 10_000;
        await using var ingest = await IngestHarness.CreateAsync(clock: TimeProvider.System);
        await using var component = await LiveComponent.StartAsync(ingest);
        var session = component.Session;
        var token = IngestHarness.NewToken();
        var id = ingest.StatelessId(token);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var clock = Stopwatch.StartNew();

        var replies = Task.Run(async () =>
        {
            var answered = new Dictionary<string, string>(Count);
            while (answered.Count < Count)
            {
                var iq = await session.ExpectStanzaAsync();
                answered[(string)iq.Attribute("id")!] = (string)iq.Attribute("type")!;
            }

            return answered;
        });
        DateTimeOffset lastSent = default;
        for (var i = 0; i < Count; i += 500)
        {
            for (var j = i; j < i + 500; j++)
            {
                session.Write(RegistrationTests.Publish("f" + j, token, pushModule: IngestHarness.Module));
            }

            lastSent = DateTimeOffset.UtcNow;
            await session.FlushAsync();
        }

        var answered = await replies.WaitAsync(TimeSpan.FromMinutes(3));
        var elapsed = clock.Elapsed;

        Assert.Equal(Count, answered.Count);
        Assert.All(answered.Values, type => Assert.Equal("result", type));
        var pushes = await ingest.PushesAsync(id);
        // One push per 5 s window at most, plus the immediate one: a handful, however long the flood took here.
        Assert.InRange(pushes.Count, 1, 2 + (int)(elapsed.TotalSeconds / 5) + 1);
        Assert.Single((await ingest.EventsAsync(id)).OfType<DeviceRegistered>());
        // Nothing acknowledged is missing: the last push goes out after the last publish was sent.
        var lastPush = pushes.Max(p => p.NotBefore ?? p.RequestedAt);
        Assert.True(lastPush >= lastSent, $"last push {lastPush:O}, last publish {lastSent:O}");
        Assert.True(component.Connection.IsConnected);
        Assert.Equal(0, component.Connection.Reconnects);
        Assert.Equal(1, ingest.Throttle.Count);
        Assert.InRange(GC.GetTotalMemory(forceFullCollection: true) - before, long.MinValue, 64L * 1024 * 1024);

        await session.Write("<iq type='get' id='alive' from='localhost' to='push.localhost'><ping xmlns='urn:xmpp:ping'/></iq>").FlushAsync();
        await session.ExpectIqResultAsync("alive");
    }
}
