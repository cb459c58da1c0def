using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest;
using Monal.Push.Ingest.Registering;
using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ingest.Throttling;
using Monal.Push.Ledger;
using Monal.Push.Projections;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

[Trait("Category", "Postgres")]
public sealed class AddIngestTests
{
    private static async Task<ServiceProvider> ProviderAsync(params (string Key, string? Value)[] settings)
    {
        var values = new Dictionary<string, string?>
        {
                ["ConnectionStrings:Ledger"] = await TestDatabase.ConnectionStringAsync(),
                ["Ledger:MasterKey"] = Convert.ToBase64String(new byte[32]),
                ["PushModules:monalProdiOS:Topic"] = "im.monal.prod",
                ["PushModules:monalProdiOS-sandbox:Topic"] = "im.monal.prod",
                ["Registration:PushModule"] = "monalProdiOS",
                ["Throttle:Window"] = "00:00:09",
                ["Xmpp:Component:Domain"] = "push.localhost",
                ["Xmpp:Component:Secret"] = "s",
        };
        foreach (var (key, value) in settings)
        {
            values[key] = value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLedger(configuration);
        services.AddProjections(configuration);
        services.AddIngest(configuration);
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
    }

    [Fact]
    public async Task AddIngest_Should_WireTheRealHandlersAndOptions_When_Configured()
    {
        await using var provider = await ProviderAsync();

        // Resolved off the test thread with a deadline: a dependency cycle through factory registrations hangs
        // instead of throwing (metrics -> component link -> router -> handlers -> metrics once did).
        var publish = await Task.Run(() => provider.GetRequiredService<IPublishHandler>()).WaitAsync(TimeSpan.FromSeconds(30));
        var router = await Task.Run(() => provider.GetRequiredService<Monal.Push.Ingest.Component.ComponentConnection>())
            .WaitAsync(TimeSpan.FromSeconds(30));
        Assert.IsType<PublishHandler>(publish);
        Assert.NotNull(router);
        Assert.IsType<RegistrationHandler>(provider.GetRequiredService<IRegistrationHandler>());
        Assert.Equal(TimeSpan.FromSeconds(9), provider.GetRequiredService<IOptions<ThrottleOptions>>().Value.Window);
        Assert.Equal(TimeSpan.FromDays(1), provider.GetRequiredService<IOptions<IngestOptions>>().Value.PushTtl);
        Assert.True(provider.GetRequiredService<Monal.Push.Ingest.Devices.ConfiguredPushModules>().Contains("monalProdiOS-sandbox"));
    }

    [Fact]
    public async Task AddIngest_Should_RefuseToStart_When_RegistrationNamesAnUnknownModule()
    {
        await using var provider = await ProviderAsync(("Registration:PushModule", "nope"));

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<RegistrationOptions>>().Value);
        Assert.Contains("Registration:PushModule", error.Message);
    }

    [Fact]
    public async Task Metrics_Should_CountPublishesWithoutPersonalData_When_AStatelessPublishIsAccepted()
    {
        await using var provider = await ProviderAsync();
        var handler = provider.GetRequiredService<IPublishHandler>();
        var token = IngestHarness.NewToken();
        var seen = new List<(string Instrument, KeyValuePair<string, object?>[] Tags)>();
        // Only this provider's meters (other tests running at the same time record to meters of the same name).
        var factory = provider.GetRequiredService<IMeterFactory>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == IngestMetrics.MeterName && ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, _, tags, _) =>
        {
            lock (seen)
            {
                seen.Add((instrument.Name, tags.ToArray()));
            }
        });
        var durations = new List<(double Seconds, KeyValuePair<string, object?>[] Tags)>();
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            if (instrument.Name == "monal.push.ingest.publish.duration")
            {
                lock (durations)
                {
                    durations.Add((value, tags.ToArray()));
                }
            }
        });
        listener.Start();

        var outcome = await handler.HandleAsync(IngestHarness.Stateless(token), CancellationToken.None);

        Assert.True(outcome.IsAccepted);
        var publish = Assert.Single(seen, s => s.Instrument == "monal.push.ingest.publishes");
        Assert.Contains(new KeyValuePair<string, object?>("mode", "stateless"), publish.Tags);
        Assert.Contains(new KeyValuePair<string, object?>("decision", "immediate"), publish.Tags);
        Assert.Contains(new KeyValuePair<string, object?>("outcome", "result"), publish.Tags);
        Assert.Single(seen, s => s.Instrument == "monal.push.ingest.replies");
        // The publish's time in the handler, its commit included: more than nothing, less than the test's own time.
        var duration = Assert.Single(durations);
        Assert.InRange(duration.Seconds, 1e-6, 60);
        Assert.Equal([new KeyValuePair<string, object?>("outcome", "result")], duration.Tags);
        listener.RecordObservableInstruments();
        Assert.Contains(seen, s => s.Instrument == "monal.push.ingest.component.reconnects");
        Assert.DoesNotContain(seen.SelectMany(s => s.Tags), t => t.Value is string v && (v.Contains(token[..8]) || v.Contains(IngestHarness.Domain)));
    }
}
