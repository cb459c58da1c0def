using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest.Component;
using Monal.Push.Ingest.Devices;
using Monal.Push.Ingest.Limiting;
using Monal.Push.Ingest.Registering;
using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ingest.Throttling;

namespace Monal.Push.Ingest;

public static class IngestServiceCollectionExtensions
{
    /// <summary>
    /// The whole ingest stage: the XEP-0114 component (<see cref="AddXmppComponent"/>), the publish handler with its
    /// per-device throttle, the v1 registration handler (map its HTTP endpoints with
    /// <see cref="RegistrationEndpoints.MapRegistration"/>; its rate limiter and request timeout policy), the abuse
    /// limits (per-domain publish limits, the new-device quota and its sweeper, a health check named <c>limits</c>),
    /// options from <c>Ingest</c>, <c>Throttle</c>, <c>Limits</c> and <c>Registration</c> (validated at start), and
    /// the <c>Monal.Push.Ingest</c> meter. Needs <c>AddLedger</c> and
    /// <c>AddProjections</c> (the device read model and its DeviceDirectory).
    /// </summary>
    public static IServiceCollection AddIngest(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var modules = new ConfiguredPushModules(configuration);
        services.AddOptions<IngestOptions>().Bind(configuration.GetSection(IngestOptions.Section))
            .Validate(o => o.PushTtl > TimeSpan.Zero, "Ingest:PushTtl must be positive.")
            .Validate(o => o.MaxPendingAppends > 0, "Ingest:MaxPendingAppends must be positive.")
            .Validate(o => o.MaxConcurrentPublishes > 0, "Ingest:MaxConcurrentPublishes must be positive.")
            .Validate(o => string.IsNullOrEmpty(o.DefaultPushModule) || modules.Contains(o.DefaultPushModule),
                "Ingest:DefaultPushModule must name a module configured under PushModules.")
            .ValidateOnStart();
        services.AddOptions<ThrottleOptions>().Bind(configuration.GetSection(ThrottleOptions.Section))
            .Validate(o => o.Window >= TimeSpan.Zero, "Throttle:Window must not be negative.")
            .Validate(o => o.MaxDevices > 0, "Throttle:MaxDevices must be positive.")
            .ValidateOnStart();

        services.AddOptions<LimitsOptions>().Bind(configuration.GetSection(LimitsOptions.Section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LimitsOptions>, LimitsOptionsValidator>());
        services.AddOptions<RateLimiterOptions>()
            .Configure<IOptions<LimitsOptions>>((o, limits) => RegistrationEndpoints.AddRegistrationPolicy(o, limits.Value));
        services.AddRateLimiter(_ => { });
        services.AddOptions<RequestTimeoutOptions>()
            .Configure<IOptions<LimitsOptions>>((o, limits) => o.AddPolicy(RegistrationEndpoints.Policy, new RequestTimeoutPolicy
            {
                Timeout = limits.Value.Http.RequestTimeout,
                TimeoutStatusCode = StatusCodes.Status503ServiceUnavailable,
            }));
        services.AddRequestTimeouts();

        services.AddOptions<RegistrationOptions>().Bind(configuration.GetSection(RegistrationOptions.Section))
            .Validate(o => o.PushModule is null || modules.Contains(o.PushModule),
                "Registration:PushModule must name a module configured under PushModules.")
            .ValidateOnStart();

        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(modules);
        services.TryAddSingleton<IDeviceLookup, DirectoryDeviceLookup>();
        services.TryAddSingleton<PushThrottle>();
        services.TryAddSingleton<DomainLimiter>();
        services.TryAddSingleton<NewDeviceQuota>();
        services.TryAddSingleton<HttpLimitNotices>();
        services.AddHostedService<QuotaSweeper>();
        services.AddHealthChecks().AddCheck<LimitsHealthCheck>("limits");
        services.TryAddSingleton<IngestMetrics>();
        services.TryAddSingleton<PublishHandler>();
        services.TryAddSingleton<IPublishHandler>(sp => sp.GetRequiredService<PublishHandler>());
        services.TryAddSingleton<RegistrationHandler>();
        services.TryAddSingleton<IRegistrationHandler>(sp => sp.GetRequiredService<RegistrationHandler>());
        services.AddRouting();
        return services.AddXmppComponent();
    }

    /// <summary>
    /// The XEP-0114 component link as a hosted service, with options from <c>Xmpp:Component</c> (validated at start)
    /// and a health check named <c>xmpp-component</c>. <see cref="RequestingPush.IPublishHandler"/> and
    /// <see cref="Registering.IRegistrationHandler"/> must be registered by the caller.
    /// </summary>
    public static IServiceCollection AddXmppComponent(this IServiceCollection services)
    {
        services.AddOptions<ComponentOptions>().BindConfiguration(ComponentOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ComponentOptions>, ComponentOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<StanzaRouter>();
        services.TryAddSingleton<ComponentConnection>();
        services.AddHostedService<ComponentHostedService>();
        services.AddHealthChecks().AddCheck<ComponentHealthCheck>("xmpp-component");
        return services;
    }
}
