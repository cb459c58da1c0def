using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Cli.Observability;

namespace Monal.Push.Cli.Hosting;

/// <summary>The only place that knows every stage: `serve` composes them here (STYLE.md section 1).</summary>
internal static class StageComposition
{
    public static void AddStages(IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddObservability();
    }

    public static void MapEndpoints(WebApplication app) => app.MapObservability();
}
