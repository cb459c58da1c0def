using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Monal.Push.Delivery.Dispatching;
using Monal.Push.Ledger.EventStore;

namespace Monal.Push.Delivery;

public static class DeliveryServiceCollectionExtensions
{
    // The delivery stage: push modules, the delivery queue kept inline in the append transaction, and the dispatcher
    // (a hosted service; register Delivery after the ledger and the projections, whose DeviceDirectory it reads, so it
    // stops first and can still record outcomes).
    public static IServiceCollection AddDelivery(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddPushModules();
        services.AddOptions<DeliveryOptions>().Bind(configuration.GetSection(DeliveryOptions.Section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DeliveryOptions>, DeliveryOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<DispatcherNode>();
        services.TryAddSingleton<DeliveryMetrics>();
        services.TryAddSingleton<IDeviceLookup, DirectoryDeviceLookup>();
        services.TryAddSingleton<DeliveryQueueProjection>();
        services.AddSingleton<IInlineProjection>(sp => sp.GetRequiredService<DeliveryQueueProjection>());
        services.AddSingleton<IStreamDeletionHook>(sp => sp.GetRequiredService<DeliveryQueueProjection>());
        services.TryAddSingleton<PushDispatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<PushDispatcher>());
        return services;
    }
}
