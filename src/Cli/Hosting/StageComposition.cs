using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
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
        services.AddObservability(configuration);
        AddHttpEdge(services, configuration);
    }

    public static void MapEndpoints(WebApplication app)
    {
        // The client's address first (from a trusted proxy's X-Forwarded-For), then the limits keyed by it.
        app.UseForwardedHeaders();
        app.UseRouting();
        app.UseRateLimiter();
        app.UseRequestTimeouts();
        app.MapRegistration();
        app.MapObservability();
    }

    /// <summary>Who may name the client (<c>Http:KnownProxies</c>) and Kestrel's request limits, validated at start.</summary>
    private static void AddHttpEdge(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<HttpEdgeOptions>().Bind(configuration.GetSection(HttpEdgeOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<HttpEdgeOptions>, HttpEdgeOptions.Validator>();
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<HttpEdgeOptions>>((o, edge) =>
        {
            // Only X-Forwarded-For, and only its last entry (the one our proxy added): ForwardLimit stays 1.
            o.ForwardedHeaders = ForwardedHeaders.XForwardedFor;
            if (edge.Value.KnownProxies.Length == 0)
            {
                return;
            }

            o.KnownProxies.Clear();
            o.KnownIPNetworks.Clear();
            foreach (var proxy in edge.Value.KnownProxies)
            {
                if (IPAddress.TryParse(proxy, out var address))
                {
                    o.KnownProxies.Add(address);
                }
                else if (System.Net.IPNetwork.TryParse(proxy, out var network))
                {
                    o.KnownIPNetworks.Add(network);
                }
            }
        });
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<HttpEdgeOptions>>((o, edge) =>
        {
            o.AddServerHeader = false;
            o.Limits.MaxRequestBodySize = edge.Value.MaxRequestBodyBytes;
            o.Limits.RequestHeadersTimeout = edge.Value.RequestHeadersTimeout;
        });
    }
}
