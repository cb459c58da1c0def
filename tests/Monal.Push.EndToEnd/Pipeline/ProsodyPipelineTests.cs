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
    public async Task Publish_Should_AnswerItemNotFoundAndNeverReachApple_When_ApnsAnswered410AndTheDeviceWasErased() =>
        await MonalClientScenarios.DeadTokenStaysDeadAsync(fixture);

    [Fact]
    public async Task Monal6Enable_Should_EndAsADeliveredPush_When_TheNodeIsAHexTokenWithAPushModule() =>
        await MonalClientScenarios.Monal6EnableAsync(fixture);

    [Fact]
    public async Task Monal520Enable_Should_EndAsADeliveredPush_When_ItCarriesNoForm() =>
        await MonalClientScenarios.Monal520EnableWithoutFormAsync(fixture);

    [Fact]
    public async Task AdHocUnregister_Should_LeaveTheTokenInNeitherDumpNorLogs_When_TheHourlyJobHasRun() =>
        await MonalClientScenarios.AdHocUnregisterThenPurgeAsync(fixture);

    [Fact]
    public async Task Monal51AdHocRegistration_Should_CompleteAndEndAsADeliveredPush_When_TheNodeIsAnUpperCaseUuid() =>
        await MonalClientScenarios.Monal51AdHocRegistrationAsync(fixture);
}
