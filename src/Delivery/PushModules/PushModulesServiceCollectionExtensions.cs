using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Monal.Push.Delivery.PushModules;

namespace Monal.Push.Delivery;

public static class PushModulesServiceCollectionExtensions
{
    // Binds `PushModules:<name>` and registers the PushModuleRegistry singleton; validates every module at start.
    public static IServiceCollection AddPushModules(this IServiceCollection services)
    {
        services.AddOptions<PushModulesOptions>()
            .Configure<IConfiguration>((options, configuration) =>
                configuration.GetSection(PushModulesOptions.Section).Bind(options.Modules))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PushModulesOptions>, PushModulesOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<PushModuleRegistry>();
        return services;
    }
}
