using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest.Component;
using Monal.Push.Ingest.Stanzas;

namespace Monal.Push.Ingest;

public static class IngestServiceCollectionExtensions
{
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
