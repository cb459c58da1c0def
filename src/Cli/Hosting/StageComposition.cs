using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Monal.Push.Cli.Hosting;

/// <summary>The only place that knows every stage: `serve` composes them here (STYLE.md section 1).</summary>
internal static class StageComposition
{
    public static void AddStages(IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
    }

    public static void MapEndpoints(WebApplication app)
    {
        app.MapGet("/health", () => Results.Json(new Dictionary<string, string> { ["status"] = "Healthy" }));
    }
}
