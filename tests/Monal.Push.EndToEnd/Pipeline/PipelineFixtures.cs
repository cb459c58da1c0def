using Monal.Push.Demo.RunningPeers;
using Monal.Push.EndToEnd.Servers;

namespace Monal.Push.EndToEnd.Pipeline;

/// <summary>A real XMPP server and the whole push pipeline as its component, one pair per test class.</summary>
public abstract class PipelineFixture : IAsyncLifetime
{
    private IXmppServer? _server;
    private PushPipeline? _pipeline;

    public IXmppServer Server => _server ?? throw new InvalidOperationException("The fixture did not start.");

    public PushPipeline Pipeline => _pipeline ?? throw new InvalidOperationException("The fixture did not start.");

    protected abstract Task<IXmppServer> StartServerAsync();

    public async Task InitializeAsync()
    {
        _server = await StartServerAsync();
        _pipeline = await PushPipeline.StartAsync(
            _server, "--Throttle:Window=00:00:00.200", $"--Ingest:DefaultPushModule={PushPipeline.Module}");
    }

    public async Task DisposeAsync()
    {
        if (_pipeline is not null)
        {
            await _pipeline.DisposeAsync();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

public sealed class ProsodyPipelineFixture : PipelineFixture
{
    protected override async Task<IXmppServer> StartServerAsync() => await ProsodyServer.StartAsync();
}

/// <summary>Prosody configured to send the real body and the sender's JID: what the privacy tests must see dropped.</summary>
public sealed class ProsodyWithBodyAndSenderPipelineFixture : PipelineFixture
{
    protected override async Task<IXmppServer> StartServerAsync() =>
        await ProsodyServer.StartAsync(new ProsodyOptions { PushWithBody = true, PushWithSender = true });
}

public sealed class EjabberdPipelineFixture : PipelineFixture
{
    protected override async Task<IXmppServer> StartServerAsync() =>
        await EjabberdServer.StartAsync(new EjabberdOptions { IncludeBody = true, IncludeSender = true });
}
