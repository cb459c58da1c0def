using System.Security.Cryptography;
using System.Xml.Linq;
using Monal.Push.Demo.Chatting;
using Monal.Push.Demo.RunningPeers;
using Xunit.Abstractions;

namespace Monal.Push.EndToEnd.Servers;

/// <summary>
/// Proves the harness against a real server: a user enables push (XEP-0357) and goes offline, another user writes
/// to them, and the server publishes to our (fake) component. The same facts hold for Prosody and ejabberd.
/// </summary>
[Trait("Category", "EndToEnd")]
public abstract class PushPublishTests
{
    private static readonly XNamespace PubSub = "http://jabber.org/protocol/pubsub";
    private static readonly XNamespace Data = "jabber:x:data";
    private static readonly XNamespace Push = "urn:xmpp:push:0";

    protected PushPublishTests(IXmppServer server, ITestOutputHelper output)
    {
        ArgumentNullException.ThrowIfNull(output);
        Server = server;
        output.WriteLine($"{server.Name} started in {server.StartupTime.TotalMilliseconds:F0} ms");
    }

    protected IXmppServer Server { get; }

    [Fact]
    public async Task Publish_Should_CarryNodeAndPushModule_When_OfflineUserEnabledStatelessPush()
    {
        var node = NewName("token");

        var push = await PublishForOfflineMessageAsync(node, new Dictionary<string, string> { ["pushModule"] = "monalProdiOS" }, "hello");

        Assert.Equal("set", push.Attribute("type")?.Value);
        Assert.Equal(Server.Domain, push.Attribute("from")?.Value);
        Assert.Equal(Server.ComponentDomain, push.Attribute("to")?.Value);
        Assert.Equal(node, Publish(push).Attribute("node")?.Value);
        Assert.NotNull(Publish(push).Element(PubSub + "item")?.Element(Push + "notification"));
        var options = PublishOptions(push);
        Assert.Equal("http://jabber.org/protocol/pubsub#publish-options", options["FORM_TYPE"]);
        Assert.Equal("monalProdiOS", options["pushModule"]);
        Assert.False(options.ContainsKey("secret"));
    }

    [Fact]
    public async Task Publish_Should_CarrySecret_When_OfflineUserEnabledRegisteredPush()
    {
        var node = NewName("device");
        var secret = NewName("secret");

        var push = await PublishForOfflineMessageAsync(node, new Dictionary<string, string> { ["secret"] = secret }, "hi there");

        Assert.Equal(Server.Domain, push.Attribute("from")?.Value);
        Assert.Equal(node, Publish(push).Attribute("node")?.Value);
        var options = PublishOptions(push);
        Assert.Equal(secret, options["secret"]);
        Assert.False(options.ContainsKey("pushModule"));
    }

    [Fact]
    public async Task Publish_Should_NotCarryTheMessageBody_When_ServerRunsWithDefaultOptions()
    {
        var node = NewName("token");
        var body = NewName("private-words");

        var push = await PublishForOfflineMessageAsync(node, new Dictionary<string, string> { ["pushModule"] = "monalAlpha" }, body);

        Assert.DoesNotContain(body, push.ToString(SaveOptions.DisableFormatting), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Publish_Should_ArriveForEveryMessage_When_ComponentAnswersResult()
    {
        var node = NewName("token");
        var (alice, bob) = await NewUsersAsync();
        await using var component = await FakeComponent.ConnectAsync(Server);
        await EnablePushAndGoOfflineAsync(alice, node, new Dictionary<string, string> { ["pushModule"] = "monalProdiOS" });
        await using var bobClient = await TinyXmppClient.ConnectAsync(Server, bob, Password);

        await bobClient.SendMessageAsync($"{alice}@{Server.Domain}", "one");
        await bobClient.SendMessageAsync($"{alice}@{Server.Domain}", "two");

        await WithLogOnFailure(() => component.WaitForIqAsync(_ => PublishCount(component, node) >= 2, "two publishes"));
        Assert.Equal(2, PublishCount(component, node));
    }

    protected const string Password = "pass-word";

    /// <summary>
    /// The component answers the first publish to node N1 with an error; then the user enables N2 and two more
    /// messages arrive. Returns the component and both nodes; the caller checks whether N1 was still published to.
    /// The second N2 publish is awaited because both servers route one message's publishes before the next
    /// message's: once it is in, any publish to N1 for the earlier message would be in too.
    /// </summary>
    protected async Task<(FakeComponent Component, string FirstNode)> AnswerFirstPublishWithErrorAsync(string errorType, string condition)
    {
        var (alice, bob) = await NewUsersAsync();
        var first = NewName("first");
        var second = NewName("second");
        var answered = 0;
        var component = await FakeComponent.ConnectAsync(Server, iq =>
            Publish(iq).Attribute("node")?.Value == first && Interlocked.Increment(ref answered) == 1
                ? FakeComponent.ErrorReply(iq, errorType, condition)
                : null);
        var options = new Dictionary<string, string> { ["pushModule"] = "monalProdiOS" };
        await EnablePushAndGoOfflineAsync(alice, first, options);
        await using var bobClient = await TinyXmppClient.ConnectAsync(Server, bob, Password);
        await bobClient.SendMessageAsync($"{alice}@{Server.Domain}", "one");
        await WithLogOnFailure(() => component.WaitForPublishAsync(first));

        await EnablePushAndGoOfflineAsync(alice, second, options);
        await bobClient.SendMessageAsync($"{alice}@{Server.Domain}", "two");
        await bobClient.SendMessageAsync($"{alice}@{Server.Domain}", "three");
        await WithLogOnFailure(() => component.WaitForIqAsync(
            _ => component.ReceivedIqs.Count(iq => Publish(iq).Attribute("node")?.Value == second) >= 2, "two publishes to the second node"));
        return (component, first);
    }

    /// <summary>A user enables push on <paramref name="node"/> and goes offline; another user writes her <paramref name="count"/> messages.</summary>
    protected async Task SendOfflineMessagesAsync(string node, int count)
    {
        var (alice, bob) = await NewUsersAsync();
        await EnablePushAndGoOfflineAsync(alice, node, new Dictionary<string, string> { ["pushModule"] = "monalProdiOS" });
        await using var bobClient = await TinyXmppClient.ConnectAsync(Server, bob, Password);
        for (var i = 0; i < count; i++)
        {
            await bobClient.SendMessageAsync($"{alice}@{Server.Domain}", "message " + i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    protected static int PublishCount(FakeComponent component, string node)
    {
        ArgumentNullException.ThrowIfNull(component);
        return component.ReceivedIqs.Count(iq => Publish(iq).Attribute("node")?.Value == node);
    }

    protected static string NewName(string prefix) => prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    protected static XElement Publish(XElement iq) =>
        iq.Element(PubSub + "pubsub")?.Element(PubSub + "publish") ?? new XElement("none");

    protected static Dictionary<string, string> PublishOptions(XElement iq)
    {
        var form = iq.Element(PubSub + "pubsub")?.Element(PubSub + "publish-options")?.Element(Data + "x");
        Assert.NotNull(form);
        Assert.Equal("submit", form.Attribute("type")?.Value);
        return FormValues(form);
    }

    protected static Dictionary<string, string> SummaryValues(XElement iq)
    {
        var form = Publish(iq).Element(PubSub + "item")?.Element(Push + "notification")?.Element(Data + "x");
        Assert.NotNull(form);
        return FormValues(form);
    }

    protected async Task<(string Alice, string Bob)> NewUsersAsync()
    {
        var alice = NewName("alice");
        var bob = NewName("bob");
        await Server.CreateUserAsync(alice, Password);
        await Server.CreateUserAsync(bob, Password);
        return (alice, bob);
    }

    protected async Task EnablePushAndGoOfflineAsync(string user, string node, IReadOnlyDictionary<string, string> publishOptions)
    {
        await using var client = await TinyXmppClient.ConnectAsync(Server, user, Password);
        await client.SendPresenceAsync();
        await client.EnablePushAsync(Server.ComponentDomain, node, publishOptions);
        await client.DisconnectAsync();
    }

    /// <summary>Alice enables push and goes offline, Bob writes to her; returns the publish IQ for the node.</summary>
    protected async Task<XElement> PublishForOfflineMessageAsync(string node, IReadOnlyDictionary<string, string> publishOptions, string body)
    {
        var (alice, bob) = await NewUsersAsync();
        await using var component = await FakeComponent.ConnectAsync(Server);
        await EnablePushAndGoOfflineAsync(alice, node, publishOptions);
        await using var bobClient = await TinyXmppClient.ConnectAsync(Server, bob, Password);
        await bobClient.SendMessageAsync($"{alice}@{Server.Domain}", body);
        return await WithLogOnFailure(() => component.WaitForPublishAsync(node));
    }

    protected async Task<T> WithLogOnFailure<T>(Func<Task<T>> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        try
        {
            return await action();
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}{Environment.NewLine}{Server.Name} log:{Environment.NewLine}{Server.ReadLog()}", e);
        }
    }

    private static Dictionary<string, string> FormValues(XElement form) =>
        form.Elements(Data + "field").ToDictionary(
            f => f.Attribute("var")?.Value ?? "",
            f => string.Join("\n", f.Elements(Data + "value").Select(v => v.Value)));
}

public sealed class ProsodyPushPublishTests(ProsodyFixture fixture, ITestOutputHelper output)
    : PushPublishTests(fixture.Server, output), IClassFixture<ProsodyFixture>
{
    /// <summary>
    /// Issue 19 (docs/operators.md, "Running several nodes"): Prosody keeps one connection per component domain. A second
    /// node connecting for the same domain is refused at its handshake, and the first keeps receiving every publish.
    /// </summary>
    [Fact]
    public async Task SecondComponent_Should_BeRefused_When_ANodeIsConnectedForTheSameDomain()
    {
        await using var first = await FakeComponent.ConnectAsync(Server);

        var refused = await Assert.ThrowsAnyAsync<Exception>(() => FakeComponent.ConnectAsync(Server));

        Assert.Contains("conflict", refused.Message, StringComparison.Ordinal);
        var node = NewName("token");
        await SendOfflineMessagesAsync(node, 2);
        await WithLogOnFailure(() => first.WaitForIqAsync(_ => PublishCount(first, node) >= 2, "both publishes on the first connection"));
    }

    [Fact]
    public async Task Publish_Should_CarryDummyBodyAndNoSender_When_ProsodyRunsWithDefaultOptions()
    {
        var push = await PublishForOfflineMessageAsync(NewName("token"), new Dictionary<string, string> { ["pushModule"] = "monalProdiOS" }, "hello");

        var summary = SummaryValues(push);
        Assert.Equal("urn:xmpp:push:summary", summary["FORM_TYPE"]);
        Assert.Equal("New Message!", summary["last-message-body"]);
        Assert.Equal("", summary["last-message-sender"]);
    }

    [Theory]
    [InlineData("cancel", "item-not-found")]
    [InlineData("wait", "internal-server-error")]
    public async Task Publish_Should_KeepComing_When_ComponentAnsweredOneError(string errorType, string condition)
    {
        var (component, first) = await AnswerFirstPublishWithErrorAsync(errorType, condition);
        await using (component)
        {
            // push_max_errors is 16: one error changes nothing.
            await WithLogOnFailure(() => component.WaitForIqAsync(_ => PublishCount(component, first) >= 3, "three publishes to the first node"));
            Assert.Equal(3, PublishCount(component, first));
        }
    }
}

public sealed class EjabberdPushPublishTests(EjabberdFixture fixture, ITestOutputHelper output)
    : PushPublishTests(fixture.Server, output), IClassFixture<EjabberdFixture>
{
    /// <summary>
    /// Issue 19 (docs/operators.md, "Running several nodes"): ejabberd accepts several connections for one component
    /// domain and spreads the publishes over them (its default route balancing, no option set), so several nodes can
    /// share one component domain.
    /// </summary>
    [Fact]
    public async Task Publishes_Should_BeSpreadOverBothComponents_When_TwoNodesConnectForTheSameDomain()
    {
        const int messages = 16;
        await using var one = await FakeComponent.ConnectAsync(Server);
        await using var two = await FakeComponent.ConnectAsync(Server);
        var node = NewName("token");

        await SendOfflineMessagesAsync(node, messages);

        var deadline = DateTime.UtcNow + one.Timeout;
        while (PublishCount(one, node) + PublishCount(two, node) < messages)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{PublishCount(one, node)} + {PublishCount(two, node)} of {messages} publishes arrived; ejabberd log:\n{Server.ReadLog()}");
            await Task.Delay(50);
        }

        Assert.Equal(messages, PublishCount(one, node) + PublishCount(two, node));
        Assert.True(PublishCount(one, node) > 0 && PublishCount(two, node) > 0,
            $"both connections got publishes: {PublishCount(one, node)} and {PublishCount(two, node)}");
    }

    [Fact]
    public async Task Publish_Should_CarrySubmitSummaryWithDefaultText_When_EjabberdRunsWithDefaultOptions()
    {
        var push = await PublishForOfflineMessageAsync(NewName("token"), new Dictionary<string, string> { ["pushModule"] = "monalProdiOS" }, "hello");

        var summary = SummaryValues(push);
        Assert.Equal("urn:xmpp:push:summary", summary["FORM_TYPE"]);
        Assert.Equal("New message", summary["last-message-body"]);
        Assert.False(summary.ContainsKey("last-message-sender"));
    }

    [Fact]
    public async Task Publish_Should_Stop_When_ComponentAnsweredOneCancelError()
    {
        var (component, first) = await AnswerFirstPublishWithErrorAsync("cancel", "item-not-found");
        await using (component)
        {
            Assert.Equal(1, PublishCount(component, first));
        }
    }

    [Fact]
    public async Task Publish_Should_KeepComing_When_ComponentAnsweredOneWaitError()
    {
        var (component, first) = await AnswerFirstPublishWithErrorAsync("wait", "internal-server-error");
        await using (component)
        {
            await WithLogOnFailure(() => component.WaitForIqAsync(_ => PublishCount(component, first) >= 3, "three publishes to the first node"));
            Assert.Equal(3, PublishCount(component, first));
        }
    }
}

/// <summary>With body and sender on, the publish carries both: what the privacy tests must prove we drop.</summary>
[Trait("Category", "EndToEnd")]
public sealed class ProsodyWithBodyPushPublishTests(ProsodyWithBodyAndSenderFixture fixture) : IClassFixture<ProsodyWithBodyAndSenderFixture>
{
    private static readonly XNamespace PubSub = "http://jabber.org/protocol/pubsub";
    private static readonly XNamespace Data = "jabber:x:data";
    private static readonly XNamespace Push = "urn:xmpp:push:0";

    [Fact]
    public async Task Publish_Should_CarryRealBodyAndSender_When_ProsodyPushesWithBodyAndSender()
    {
        var server = fixture.Server;
        var alice = "alice" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var bob = "bob" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        const string body = "Meet me at 6 <b>&amp; bring ümlauts</b>";
        await server.CreateUserAsync(alice, "pw");
        await server.CreateUserAsync(bob, "pw");
        await using var component = await FakeComponent.ConnectAsync(server);
        await using (var aliceClient = await TinyXmppClient.ConnectAsync(server, alice, "pw"))
        {
            await aliceClient.EnablePushAsync(server.ComponentDomain, "node-with-body",
                new Dictionary<string, string> { ["pushModule"] = "monalProdiOS" });
            await aliceClient.DisconnectAsync();
        }

        await using var bobClient = await TinyXmppClient.ConnectAsync(server, bob, "pw");
        await bobClient.SendMessageAsync($"{alice}@{server.Domain}", body);
        XElement push;
        try
        {
            push = await component.WaitForPublishAsync("node-with-body");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + Environment.NewLine + server.ReadLog(), e);
        }

        var summary = push.Element(PubSub + "pubsub")!.Element(PubSub + "publish")!.Element(PubSub + "item")!
            .Element(Push + "notification")!.Element(Data + "x")!;
        string Field(string name) => summary.Elements(Data + "field").Single(f => f.Attribute("var")?.Value == name).Value;
        Assert.Equal(body, Field("last-message-body"));
        Assert.StartsWith($"{bob}@{server.Domain}", Field("last-message-sender"), StringComparison.Ordinal);
        Assert.Equal(server.Domain, push.Attribute("from")?.Value);
    }
}
