using System.Diagnostics;
using System.Text.Json;
using Monal.Push.Purge.Locating;
using Monal.Push.Tests.Purge;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// The built `monal-push` executable, run as an operator's script would: a machine-readable document alone on
/// standard output (so `&gt; report.json` is JSON), every log line on standard error, and the documented exit codes.
/// The verbs use the test database through --ConnectionStrings:Ledger, so no cluster of their own is started.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class CommandOutputTests
{
    private sealed record Run(int ExitCode, string Stdout, string Stderr);

    private static async Task<Run> MonalPushAsync(PurgeHost host, params string[] arguments)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])[Path.Combine(AppContext.BaseDirectory, "monal-push.dll"), .. arguments,
            $"--ConnectionStrings:Ledger={host.ConnectionString}", $"--Data:Path={host.DataPath}",
            $"--Ledger:MasterKey={PurgeHost.MasterKeyBase64}"])
        {
            info.ArgumentList.Add(argument);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        return new Run(process.ExitCode, await stdout, await stderr);
    }

    private static void AssertLogsOnStandardError(Run run) =>
        Assert.Contains(" info: Microsoft.Hosting.Lifetime", run.Stderr, StringComparison.Ordinal);

    [Fact]
    public async Task AuditRetention_Should_WriteOnlyTheJsonReportToStandardOutput_When_FormatIsJson()
    {
        await using var host = await PurgeHost.CreateAsync();

        var run = await MonalPushAsync(host, "audit", "retention", "--format", "json");

        Assert.True(run.ExitCode is 0 or 1, run.Stderr);
        using var report = JsonDocument.Parse(run.Stdout);
        Assert.Equal(run.ExitCode == 0, report.RootElement.GetProperty("compliant").GetBoolean());
        AssertLogsOnStandardError(run);
    }

    [Fact]
    public async Task GdprExport_Should_WriteOnlyTheJsonExportToStandardOutput_When_TheTokenIsPastedInUpperCase()
    {
        await using var host = await PurgeHost.CreateAsync();
        var token = PurgeHost.NewToken();
        var device = await host.RegisterStatelessAsync(token);

        var run = await MonalPushAsync(host, "gdpr", "export", "--token", token.ToUpperInvariant(), "--format", "json");

        Assert.Equal(0, run.ExitCode);
        using var export = JsonDocument.Parse(run.Stdout);
        var found = Assert.Single(export.RootElement.GetProperty("devices").EnumerateArray());
        Assert.Equal(device, found.GetProperty("device_id").GetGuid());
        AssertLogsOnStandardError(run);
        Assert.DoesNotContain(token, run.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Gdpr_Should_ExitWithNothingFoundAndSaySoOnStandardError_When_NoDeviceHasTheToken()
    {
        await using var host = await PurgeHost.CreateAsync();
        var kept = await host.RegisterStatelessAsync(PurgeHost.NewToken());
        var unknown = PurgeHost.NewToken();

        var erase = await MonalPushAsync(host, "gdpr", "erase", "--token", unknown);
        var export = await MonalPushAsync(host, "gdpr", "export", "--node", unknown, "--format", "json");

        Assert.Equal(3, erase.ExitCode);
        Assert.Equal("", erase.Stdout);
        Assert.Contains("NOT FOUND", erase.Stderr, StringComparison.Ordinal);
        Assert.Equal(3, export.ExitCode);
        using var document = JsonDocument.Parse(export.Stdout);
        Assert.Empty(document.RootElement.GetProperty("devices").EnumerateArray());
        Assert.Contains("NOT FOUND", export.Stderr, StringComparison.Ordinal);
        Assert.True(await host.Get<Monal.Push.Purge.Locating.DeviceLocator>().IsHeldAsync(kept, CancellationToken.None));
    }
}
