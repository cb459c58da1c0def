using Monal.Push.Demo.Chatting;
using static Monal.Push.EndToEnd.Pipeline.PipelineScenarios;

namespace Monal.Push.EndToEnd.Pipeline;

[Trait("Category", "EndToEnd")]
public sealed class ProsodyPipelineTests(ProsodyPipelineFixture fixture) : IClassFixture<ProsodyPipelineFixture>
{
    [Fact]
    public async Task Publish_Should_EndAsADeliveredPushAtApns_When_TheNodeIsStateless()
    {
        var token = NewToken();

        await MessageOfflineUserAsync(fixture, token, new Dictionary<string, string> { ["pushModule"] = PushPipeline.Module }, "hi");

        var request = await fixture.Pipeline.WaitForApnsRequestAsync(token);
        await AssertDeliveredAsync(fixture.Pipeline, request);
    }

    [Fact]
    public async Task Publish_Should_EndAsADeliveredPushAtApns_When_TheNodeIsRegistered()
    {
        var token = NewToken();
        var node = Guid.NewGuid();
        var secret = await fixture.Pipeline.RegisterAsync(node, token);

        await MessageOfflineUserAsync(fixture, node.ToString(), new Dictionary<string, string> { ["secret"] = secret }, "hi");

        var request = await fixture.Pipeline.WaitForApnsRequestAsync(token);
        await AssertDeliveredAsync(fixture.Pipeline, request);
    }

    [Fact]
    public async Task Publish_Should_InvalidateTheTokenAndRefuseTheNextPublish_When_ApnsAnswers410()
    {
        var token = NewToken();
        // Apple's timestamp says since when the token is invalid: after the device was created here, or the
        // invalidation would rightly be ignored (the device "registered again after Apple's timestamp").
        var appleTimestamp = DateTimeOffset.UtcNow.AddMinutes(1);
        fixture.Pipeline.Apns.RespondToToken(token, 410, "Unregistered", appleTimestamp);
        var options = new Dictionary<string, string> { ["pushModule"] = PushPipeline.Module };

        var (recipient, _) = await MessageOfflineUserAsync(fixture, token, options, "first");
        var request = await fixture.Pipeline.WaitForApnsRequestAsync(token);
        var apnsId = request.Header("apns-id")!;
        await fixture.Pipeline.WaitForCountAsync(1,
            "select count(*) from events where type = 'token_invalidated.v1' and data->>'push_id' = $1", apnsId);
        Assert.Equal(0, await fixture.Pipeline.CountAsync(
            "select count(*) from push_events where type = 'push_delivered.v1' and data->>'push_id' = $1", apnsId));

        // The next publish to that node is answered item-not-found: no new push is requested for the device.
        var bob = NewUser("carol");
        await fixture.Server.CreateUserAsync(bob, "pw");
        await using var b = await TinyXmppClient.ConnectAsync(fixture.Server, bob, "pw");
        var before = await fixture.Pipeline.CountAsync("select count(*) from push_events where type = 'push_requested.v1'");
        var refusals = await fixture.Pipeline.ItemNotFoundRepliesAsync();
        await b.SendMessageAsync(recipient, "second");
        await PushPipeline.WaitUntilAsync(async () => await fixture.Pipeline.ItemNotFoundRepliesAsync() > refusals, "an item-not-found reply");
        Assert.Equal(before, await fixture.Pipeline.CountAsync("select count(*) from push_events where type = 'push_requested.v1'"));
        Assert.Single(fixture.Pipeline.Apns.Requests, r => r.DeviceToken == token);
    }
}
