using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest.Component;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

/// <summary>The real component link with the real handlers of an <see cref="IngestHarness"/>, connected to a FakeXmppServer.</summary>
internal sealed class LiveComponent : IAsyncDisposable
{
    public const string Secret = "component-secret";

    private readonly CancellationTokenSource _stop = new();
    private readonly FakeXmppServer _server;
    private readonly Task _running;

    private LiveComponent(FakeXmppServer server, ComponentConnection connection, FakeComponentSession session, Task running)
    {
        _server = server;
        Connection = connection;
        Session = session;
        _running = running;
    }

    public ComponentConnection Connection { get; }

    public FakeComponentSession Session { get; }

    public static async Task<LiveComponent> StartAsync(IngestHarness ingest)
    {
        var server = FakeXmppServer.Start();
        var options = new ComponentOptions { Port = server.Port, Domain = "push.localhost", Secret = Secret };
        var router = new StanzaRouter(ingest.Publish, ingest.Registration, NullLogger<StanzaRouter>.Instance);
        var connection = new ComponentConnection(Options.Create(options), router, TimeProvider.System, NullLogger<ComponentConnection>.Instance);
        var live = new CancellationTokenSource();
        var running = connection.RunAsync(live.Token);
        var session = await server.AcceptComponentAsync(Secret);
        var component = new LiveComponent(server, connection, session, running);
        component._stop.Token.Register(live.Cancel);
        return component;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _running.WaitAsync(FakeXmppServer.Timeout);
        await Session.DisposeAsync();
        await _server.DisposeAsync();
        _stop.Dispose();
    }
}
