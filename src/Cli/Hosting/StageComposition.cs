using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Cli.Observability;
using Monal.Push.Delivery;
using Monal.Push.Ingest;
using Monal.Push.Ingest.Registering;
using Monal.Push.Projections;
using Monal.Push.Purge;

namespace Monal.Push.Cli.Hosting;

/// <summary>The only place that knows every stage: `serve` composes them here.</summary>
internal static class StageComposition
{
    /// <summary>What `serve` and the admin verbs share: read models, GDPR, audit and the retention facade.</summary>
    public static void AddSharedServices(IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddProjections(configuration);
        services.AddPurge(configuration);
    }

    /// <summary>The running pipeline (only `serve`).</summary>
    public static void AddStages(IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        // Hosted services stop in reverse order: the component link stops taking publishes first, then delivery
        // finishes or hands back its claims, then the ledger flushes the group commit.
        services.AddDelivery(configuration);
        services.AddIngest(configuration);
        services.AddObservability();
    }

    public static void MapEndpoints(WebApplication app)
    {
        app.MapRegistration();
        app.MapObservability();
    }
}
