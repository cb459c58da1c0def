using static Monal.Push.EndToEnd.Pipeline.PipelineScenarios;

namespace Monal.Push.EndToEnd.Pipeline;

[Trait("Category", "EndToEnd")]
public sealed class EjabberdPipelineTests(EjabberdPipelineFixture fixture) : IClassFixture<EjabberdPipelineFixture>
{
    [Fact]
    public async Task Publish_Should_EndAsADeliveredPushAtApns_When_TheNodeIsStateless()
    {
        var token = NewToken();

        await MessageOfflineUserAsync(fixture, token, new Dictionary<string, string> { ["pushModule"] = PushPipeline.Module }, "hi");

        await AssertDeliveredAsync(fixture.Pipeline, await fixture.Pipeline.WaitForApnsRequestAsync(token));
    }

    [Fact]
    public async Task Publish_Should_EndAsADeliveredPushAtApns_When_TheNodeIsRegistered()
    {
        var token = NewToken();
        var node = Guid.NewGuid();
        var secret = await fixture.Pipeline.RegisterAsync(node, token);
        var body = "ejabberd body " + Guid.NewGuid().ToString("N");

        var (recipient, sender) = await MessageOfflineUserAsync(
            fixture, node.ToString(), new Dictionary<string, string> { ["secret"] = secret }, body);

        await AssertDeliveredAsync(fixture.Pipeline, await fixture.Pipeline.WaitForApnsRequestAsync(token));
        var dump = await fixture.Pipeline.DumpDatabaseAsync();
        Assert.DoesNotContain(body, dump, StringComparison.Ordinal);
        Assert.DoesNotContain(recipient, dump, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(sender.Split('/')[0], dump, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(token, dump, StringComparison.OrdinalIgnoreCase);
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
