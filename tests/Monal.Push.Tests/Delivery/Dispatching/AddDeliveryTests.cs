using Monal.Push.Projections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Monal.Push.Delivery;
using Monal.Push.Delivery.Dispatching;
using Monal.Push.Ledger;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Delivery.Dispatching;

public sealed class AddDeliveryTests : IDisposable
{
    private readonly ProviderKeyFile _key = new();

    public void Dispose() => _key.Dispose();

    private ServiceProvider Build(string connectionString, Dictionary<string, string?> delivery)
    {
        var settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Ledger"] = connectionString,
            ["Ledger:MasterKey"] = Convert.ToBase64String(new byte[32]),
            ["PushModules:monalProdiOS:Topic"] = "im.monal.test",
            ["PushModules:monalProdiOS:TeamId"] = _key.TeamId,
            ["PushModules:monalProdiOS:KeyId"] = _key.KeyId,
            ["PushModules:monalProdiOS:KeyFile"] = _key.Path,
        };
        foreach (var (k, v) in delivery)
        {
            settings["Delivery:" + k] = v;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddLogging()
            .AddLedger(configuration)
            .AddProjections(configuration)
            .AddDelivery(configuration)
            .BuildServiceProvider();
    }

    [Fact]
    [Trait("Category", "Postgres")]
    public async Task AddDelivery_Should_RegisterQueueProjectionAndDispatcherWithBoundOptions_When_Configured()
    {
        await using var services = Build(await TestDatabase.ConnectionStringAsync(), new()
        {
            ["LeaseDuration"] = "00:00:45",
            ["PollInterval"] = "00:00:02",
            ["MaxInFlight"] = "64",
            ["RetryBaseDelay"] = "00:00:03",
            ["RetryMaxDelay"] = "00:10:00",
        });

        var options = services.GetRequiredService<IOptions<DeliveryOptions>>().Value;
        var projection = services.GetRequiredService<DeliveryQueueProjection>();

        Assert.Equal(TimeSpan.FromSeconds(45), options.LeaseDuration);
        Assert.Equal(TimeSpan.FromSeconds(2), options.PollInterval);
        Assert.Equal(64, options.MaxInFlight);
        Assert.Equal(TimeSpan.FromSeconds(3), options.RetryBaseDelay);
        Assert.Equal(TimeSpan.FromMinutes(10), options.RetryMaxDelay);
        Assert.Contains(projection, services.GetServices<IInlineProjection>());
        Assert.Contains(projection, services.GetServices<IStreamDeletionHook>());
        Assert.Contains(services.GetRequiredService<PushDispatcher>(), services.GetServices<IHostedService>());
    }

    [Fact]
    public void AddDelivery_Should_FailValidationNamingTheKey_When_LeaseIsNotPositive()
    {
        using var services = Build("Host=127.0.0.1", new() { ["LeaseDuration"] = "00:00:00", ["MaxInFlight"] = "0" });

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<DeliveryOptions>>().Value);

        Assert.Contains(error.Failures, f => f.Contains("Delivery:LeaseDuration", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("Delivery:MaxInFlight", StringComparison.Ordinal));
    }
}
