using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Monal.Push.Ledger;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Projections;
using Monal.Push.Projections.Daemon;
using Monal.Push.Projections.Devices;
using Monal.Push.Projections.PushLog;
using Monal.Push.Projections.Rebuilding;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Projections;

[Trait("Category", "Postgres")]
public sealed class ProjectionsCompositionTests
{
    [Fact]
    public async Task AddProjections_Should_WireTheReadModels_When_ComposedWithTheLedger()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Ledger"] = await TestDatabase.ConnectionStringAsync(),
            ["Projections:PageSize"] = "250",
            ["Projections:LeaderRetry"] = "00:00:01",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddLedger(configuration).AddProjections(configuration);
        await using var provider = services.BuildServiceProvider();

        Assert.IsType<DeviceProjection>(Assert.Single(provider.GetServices<IInlineProjection>()));
        Assert.Equal(2, provider.GetServices<IStreamDeletionHook>().Count());
        Assert.Equal(["push_log"], provider.GetServices<IAsyncProjection>().Select(p => p.Name));
        Assert.Contains(provider.GetServices<IHostedService>(), s => s is ProjectionDaemon);
        Assert.Same(provider.GetRequiredService<DeviceDirectory>(), provider.GetRequiredService<DeviceDirectory>());
        Assert.Equal(["devices", "push_log"], provider.GetRequiredService<ProjectionRebuilder>().Names);
        Assert.NotNull(provider.GetRequiredService<ProjectionStatus>());
        Assert.NotNull(provider.GetRequiredService<PushLogRetention>());
        Assert.Equal(250, provider.GetRequiredService<Microsoft.Extensions.Options.IOptions<ProjectionsOptions>>().Value.PageSize);
    }
}
