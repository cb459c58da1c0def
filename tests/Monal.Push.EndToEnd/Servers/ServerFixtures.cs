using Monal.Push.Demo.RunningPeers;

namespace Monal.Push.EndToEnd.Servers;

/// <summary>One private Prosody (default push options: dummy body, no sender) per test class.</summary>
public sealed class ProsodyFixture : IAsyncLifetime
{
    private ProsodyServer? server;

    public ProsodyServer Server => server ?? throw new InvalidOperationException("The fixture did not start.");

    public async Task InitializeAsync() => server = await ProsodyServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (server is not null)
        {
            await server.DisposeAsync();
        }
    }
}

/// <summary>One private Prosody with <c>push_notification_with_body</c> and <c>_with_sender</c> on, per test class.</summary>
public sealed class ProsodyWithBodyAndSenderFixture : IAsyncLifetime
{
    private ProsodyServer? server;

    public ProsodyServer Server => server ?? throw new InvalidOperationException("The fixture did not start.");

    public async Task InitializeAsync() =>
        server = await ProsodyServer.StartAsync(new ProsodyOptions { PushWithBody = true, PushWithSender = true });

    public async Task DisposeAsync()
    {
        if (server is not null)
        {
            await server.DisposeAsync();
        }
    }
}

/// <summary>One private ejabberd (default mod_push options) per test class.</summary>
public sealed class EjabberdFixture : IAsyncLifetime
{
    private EjabberdServer? server;

    public EjabberdServer Server => server ?? throw new InvalidOperationException("The fixture did not start.");

    public async Task InitializeAsync() => server = await EjabberdServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (server is not null)
        {
            await server.DisposeAsync();
        }
    }
}
