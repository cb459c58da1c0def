using System.Text.Json;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// The runtime settings docs/operators.md describes (*Memory*, *Idle threads do not spin*) are the ones
/// `monal-push.runtimeconfig.json` ships with: each was measured (docs/benchmarks.md) and an operator turns it off by
/// the environment variable the docs name.
/// </summary>
public sealed class RuntimeConfigTests
{
    [Theory]
    [InlineData("System.GC.Gen0MaxBudget", "33554432")]
    [InlineData("System.GC.ConserveMemory", "7")]
    [InlineData("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit", "0")]
    [InlineData("System.Runtime.TieredPGO", "false")]
    [InlineData("System.GC.Server", "false")]
    public void RuntimeConfig_Should_CarryTheDocumentedSetting(string name, string expected)
    {
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "monal-push.runtimeconfig.json")));
        var properties = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");

        Assert.True(properties.TryGetProperty(name, out var value), $"{name} is not set");
        Assert.Equal(expected, value.ToString().ToLowerInvariant());
    }
}
