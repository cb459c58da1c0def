using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Monal.Push.Purge;

namespace Monal.Push.Tests.Purge;

/// <summary>The policy's 14 days are a maximum: a longer Retention:PushLog or Retention:LogFiles stops the host at start.</summary>
public sealed class RetentionOptionsTests
{
    private static async Task<IHost> StartAsync(params (string Key, string Value)[] settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(
            settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)).Append(new("Retention:Scheduler", "false")));
        builder.Services.AddLogging();
        builder.Services.AddPurge(builder.Configuration);
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    [Theory]
    [InlineData("Retention:PushLog", "15.00:00:00")]
    [InlineData("Retention:LogFiles", "14.00:00:01")]
    [InlineData("Retention:PushLog", "365.00:00:00")]
    public async Task StartAsync_Should_RefuseNamingKeyAndMaximum_When_APeriodIsLongerThanThePolicy(string key, string value)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync((key, value)));

        var failure = Assert.Single(error.Failures);
        Assert.StartsWith($"{key} is {value}", failure, StringComparison.Ordinal);
        Assert.Contains("at most 14.00:00:00 (14 days)", failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_Should_NameBothKeys_When_BothPeriodsAreTooLong()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(
            () => StartAsync(("Retention:PushLog", "30.00:00:00"), ("Retention:LogFiles", "30.00:00:00")));

        Assert.Equal(2, error.Failures.Count());
        Assert.Contains(error.Failures, f => f.StartsWith("Retention:PushLog", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.StartsWith("Retention:LogFiles", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("14.00:00:00", "14.00:00:00")]
    [InlineData("7.00:00:00", "1.00:00:00")]
    [InlineData("00:30:00", "2.00:00:00")]
    public async Task StartAsync_Should_Start_When_PeriodsAreAtMostThePolicy(string pushLog, string logFiles)
    {
        using var host = await StartAsync(("Retention:PushLog", pushLog), ("Retention:LogFiles", logFiles));

        var options = host.Services.GetRequiredService<IOptions<RetentionOptions>>().Value;
        Assert.Equal(TimeSpan.Parse(pushLog, System.Globalization.CultureInfo.InvariantCulture), options.PushLog);
        await host.StopAsync();
    }

    [Theory]
    [InlineData("Retention:PushLog", "00:00:00", "must be positive")]
    [InlineData("Retention:BatchSize", "0", "Retention:BatchSize must be positive")]
    [InlineData("Retention:PurgeInterval", "00:00:00.5", "at least one second")]
    public async Task StartAsync_Should_Refuse_When_AValueIsOutOfRange(string key, string value, string message)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync((key, value)));

        Assert.Contains(error.Failures, f => f.Contains(message, StringComparison.Ordinal));
    }
}
