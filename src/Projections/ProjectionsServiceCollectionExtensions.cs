using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Projections.Daemon;
using Monal.Push.Projections.Devices;
using Monal.Push.Projections.PushLog;
using Monal.Push.Projections.Rebuilding;

namespace Monal.Push.Projections;

/// <summary>Composition of the read models. Call after <c>AddLedger</c>.</summary>
public static class ProjectionsServiceCollectionExtensions
{
    /// <summary>
    /// Registers the inline device projection (as IInlineProjection and IStreamDeletionHook), DeviceDirectory, the
    /// async projections (push log, domain usage), the daemon (hosted; <c>Projections:RunDaemon</c>), ProjectionStatus
    /// ProjectionRebuilder and PushLogRetention. Options: section <c>Projections</c>.
    /// </summary>
    public static IServiceCollection AddProjections(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<ProjectionsOptions>().Bind(configuration.GetSection("Projections"))
            .Validate(o => o.PageSize > 0 && o.RangeSize > 0 && o.RebuildPageSize > 0, "Projections:PageSize, RangeSize and RebuildPageSize must be positive.")
            .Validate(o => o.GatherDelay >= TimeSpan.Zero, "Projections:GatherDelay must not be negative.")
            .Validate(o => o.PollInterval > TimeSpan.Zero && o.LeaderRetry > TimeSpan.Zero,
                "Projections:PollInterval and LeaderRetry must be positive.")
            .Validate(o => o.DeviceCacheSize > 0 && o.DeviceCacheTtl >= TimeSpan.Zero,
                "Projections:DeviceCacheSize must be positive and DeviceCacheTtl not negative.")
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<DeviceDirectory>();
        services.TryAddSingleton(sp => new DeviceProjection(sp.GetRequiredService<DeviceDirectory>()));
        services.AddSingleton<IInlineProjection>(sp => sp.GetRequiredService<DeviceProjection>());
        services.AddSingleton<IStreamDeletionHook>(sp => sp.GetRequiredService<DeviceProjection>());
        services.TryAddSingleton<PushLogProjection>();
        services.AddSingleton<IAsyncProjection>(sp => sp.GetRequiredService<PushLogProjection>());
        services.AddSingleton<IStreamDeletionHook>(sp => sp.GetRequiredService<PushLogProjection>());
        services.TryAddSingleton<ProjectionDaemon>();
        services.AddHostedService(sp => sp.GetRequiredService<ProjectionDaemon>());
        services.TryAddSingleton<ProjectionStatus>();
        services.TryAddSingleton<ProjectionRebuilder>();
        services.TryAddSingleton<PushLogRetention>();
        return services;
    }
}
