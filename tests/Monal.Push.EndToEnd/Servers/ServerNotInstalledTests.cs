using Monal.Push.Demo.RunningPeers;

namespace Monal.Push.EndToEnd.Servers;

/// <summary>A machine without the servers must fail the end-to-end tests loudly, never skip them.</summary>
[Trait("Category", "EndToEnd")]
public sealed class ServerNotInstalledTests
{
    [Fact]
    public async Task StartAsync_Should_FailNamingTheInstallScript_When_ProsodyIsMissing()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(
            () => ProsodyServer.StartAsync(new ProsodyOptions { Executable = "/nonexistent/prosody" }));

        Assert.Contains(".ci/install-peers.sh", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_Should_FailNamingTheInstallScript_When_EjabberdIsMissing()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(
            () => EjabberdServer.StartAsync(new EjabberdOptions { ErlExecutable = "/nonexistent/erl" }));

        Assert.Contains(".ci/install-peers.sh", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HandshakeDigest_Should_BeLowercaseHexSha1OfIdAndSecret_When_Computed()
    {
        // Known answer from coreutils: printf '%s' 3BF96D32secret | sha1sum
        Assert.Equal("b09ea9b3b7f586be8a08d0a3dd7466f110aeb136", FakeComponent.HandshakeDigest("3BF96D32", "secret"));
    }
}
