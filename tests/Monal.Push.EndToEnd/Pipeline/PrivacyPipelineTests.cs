using static Monal.Push.EndToEnd.Pipeline.PipelineScenarios;

namespace Monal.Push.EndToEnd.Pipeline;

/// <summary>
/// The privacy policy's promises against a Prosody that sends the real body and the sender's JID: after the push
/// went out, neither body, nor any JID, nor the token in clear is anywhere in a full database dump or in the logs.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class PrivacyPipelineTests(ProsodyWithBodyAndSenderPipelineFixture fixture)
    : IClassFixture<ProsodyWithBodyAndSenderPipelineFixture>
{
    [Fact]
    public async Task Pipeline_Should_KeepNoBodySenderJidOrClearToken_When_TheServerSendsThemAll()
    {
        var token = NewToken();
        var node = Guid.NewGuid();
        var secret = await fixture.Pipeline.RegisterAsync(node, token);
        var statelessToken = NewToken();
        var body = "the body " + Guid.NewGuid().ToString("N");

        var (recipient, sender) = await MessageOfflineUserAsync(
            fixture, node.ToString(), new Dictionary<string, string> { ["secret"] = secret }, body);
        var (recipient2, sender2) = await MessageOfflineUserAsync(
            fixture, statelessToken, new Dictionary<string, string> { ["pushModule"] = PushPipeline.Module }, body);
        await AssertDeliveredAsync(fixture.Pipeline, await fixture.Pipeline.WaitForApnsRequestAsync(token));
        await AssertDeliveredAsync(fixture.Pipeline, await fixture.Pipeline.WaitForApnsRequestAsync(statelessToken));

        var dump = await fixture.Pipeline.DumpDatabaseAsync();
        var logs = fixture.Pipeline.ReadLogFiles();
        Assert.Contains("push_delivered.v1", dump, StringComparison.Ordinal); // the dump is real and has the pushes
        Assert.False(string.IsNullOrWhiteSpace(logs), "serve wrote log files");
        foreach (var (what, secretText) in new[]
        {
            ("message body", body), ("recipient JID", recipient), ("sender JID", sender), ("sender bare JID", sender.Split('/')[0]),
            ("recipient JID", recipient2), ("sender JID", sender2), ("registered token", token), ("stateless token", statelessToken),
            ("registration secret", secret),
        })
        {
            Assert.False(dump.Contains(secretText, StringComparison.OrdinalIgnoreCase), $"the {what} is in the database dump");
            Assert.False(logs.Contains(secretText, StringComparison.OrdinalIgnoreCase), $"the {what} is in the log files");
        }

        // The XMPP server's domain is what the policy allows us to keep about who used a device.
        Assert.Contains(fixture.Server.Domain, dump, StringComparison.Ordinal);
    }
}
