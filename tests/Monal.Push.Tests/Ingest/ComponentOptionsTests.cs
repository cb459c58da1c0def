using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest;
using Monal.Push.Ingest.Component;

namespace Monal.Push.Tests.Ingest;

public sealed class ComponentOptionsTests
{
    private static ComponentOptions Resolve(Dictionary<string, string?> settings)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        services.AddXmppComponent();
        using var provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<ComponentOptions>>().Value;
    }

    [Fact]
    public void AddXmppComponent_Should_BindXmppComponentSectionWithDefaults_When_OnlyRequiredKeysAreSet()
    {
        var options = Resolve(new() { ["Xmpp:Component:Domain"] = "push.example.org", ["Xmpp:Component:Secret"] = "s", ["Xmpp:Component:Port"] = "5348" });

        Assert.Equal(("127.0.0.1", 5348, "push.example.org"), (options.Host, options.Port, options.Domain));
        Assert.Equal(TimeSpan.FromSeconds(60), options.KeepAliveInterval);
        Assert.Equal(65536, options.MaxStanzaBytes);
        Assert.Equal(2048, options.MaxInFlight);
        Assert.Equal((TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60)), (options.ReconnectMinDelay, options.ReconnectMaxDelay));
    }

    [Fact]
    public void AddXmppComponent_Should_FailValidationWithoutEchoingValues_When_SecretIsMissing()
    {
        var error = Assert.Throws<OptionsValidationException>(() =>
            Resolve(new() { ["Xmpp:Component:Domain"] = "push.example.org", ["Xmpp:Component:MaxInFlight"] = "0" }));

        Assert.Contains("Xmpp:Component:Secret is required", error.Message, StringComparison.Ordinal);
        Assert.Contains("MaxInFlight", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Backoff_Should_GrowAndStayWithinBounds_When_FailuresRepeat()
    {
        var connection = new ComponentConnection(
            Options.Create(new ComponentOptions { Domain = "d", Secret = "s" }), null!, TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<ComponentConnection>.Instance);

        Assert.InRange(connection.Backoff(1), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1));
        Assert.InRange(connection.Backoff(3), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4));
        Assert.InRange(connection.Backoff(50), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(60));
    }

    [Fact]
    public void Backoff_Should_StayWithinFiveSeconds_When_TheServerIsUnreachable()
    {
        var connection = new ComponentConnection(
            Options.Create(new ComponentOptions { Domain = "d", Secret = "s" }), null!, TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<ComponentConnection>.Instance);

        Assert.InRange(connection.Backoff(1, rejected: false), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1));
        Assert.InRange(connection.Backoff(3, rejected: false), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4));
        Assert.InRange(connection.Backoff(50, rejected: false), TimeSpan.FromSeconds(2.5), TimeSpan.FromSeconds(5));
    }
}
