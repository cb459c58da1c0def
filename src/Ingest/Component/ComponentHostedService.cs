using Microsoft.Extensions.Hosting;

namespace Monal.Push.Ingest.Component;

/// <summary>Runs the component link for the host's lifetime; stopping the host closes the stream cleanly.</summary>
internal sealed class ComponentHostedService(ComponentConnection connection) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => connection.RunAsync(stoppingToken);
}
