using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Purge.Auditing;
using Monal.Push.Purge.DeletingInvalidTokens;
using Monal.Push.Purge.Erasing;
using Monal.Push.Purge.Exporting;
using Monal.Push.Purge.KeepingLogFiles;
using Monal.Push.Purge.Locating;
using Monal.Push.Purge.PurgingPushLogs;
using Monal.Push.Purge.Scheduling;

namespace Monal.Push.Purge;

/// <summary>
/// Composition of the purge stage (docs/architecture.md); call after AddLedger and AddProjections, which provide
/// PushLogRetention and the deletion hooks that erase a device's read-model rows with its stream.
/// </summary>
public static class PurgeServiceCollectionExtensions
{
    /// <summary>
    /// Registers the retention tasks and their facade (<see cref="RetentionJobs"/>), GDPR export and erase, the
    /// retention audit, the rolling file logger, and (unless <c>Retention:Scheduler</c> is false) Quartz with its
    /// clustered job store on the ledger's PostgreSQL.
    /// </summary>
    public static IServiceCollection AddPurge(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<RetentionOptions>().Bind(configuration.GetSection("Retention")).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<RetentionOptions>, RetentionOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);

        services.TryAddSingleton<DeviceLocator>();
        services.TryAddSingleton<DeviceEraser>();
        services.TryAddSingleton<SubjectAccessExporter>();
        services.TryAddSingleton<RetentionAuditor>();
        services.TryAddSingleton<InvalidTokenSweeper>();
        services.AddSingleton<IRetentionTask>(sp => sp.GetRequiredService<InvalidTokenSweeper>());
        services.AddSingleton<IRetentionTask, PushLogPurger>();
        services.AddSingleton<IRetentionTask, LogFileSweeper>();
        services.TryAddSingleton<RetentionJobs>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoggerProvider, RollingFileLoggerProvider>());

        if (configuration.GetValue("Retention:Scheduler", true))
        {
            RetentionScheduling.AddRetentionScheduler(services, configuration);
        }

        return services;
    }
}
