using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Purge.DeletingInvalidTokens;
using Monal.Push.Purge.KeepingLogFiles;
using Monal.Push.Purge.PurgingPushLogs;
using Monal.Push.Purge.Scheduling;
using Npgsql;
using Quartz;

namespace Monal.Push.Purge;

/// <summary>
/// Quartz with a persistent, clustered ADO job store on the ledger's PostgreSQL (issue 6): every `serve` process
/// joins one cluster, so each trigger fires once across them, and triggers survive restarts. The tables come from
/// migrations/0004_quartz.sql; the store only validates them. Quartz keeps the real clock (its timing is not under
/// test); the jobs read the injected TimeProvider.
/// </summary>
internal static class RetentionScheduling
{
    public const string SchedulerName = "monal-push-retention";
    public const string Group = "retention";

    public static void AddRetentionScheduler(IServiceCollection services, IConfiguration configuration)
    {
        var retention = new RetentionOptions();
        configuration.GetSection("Retention").Bind(retention);

        services.AddQuartz(q =>
        {
            q.ConfigureScheduler(s => s.InstanceName = SchedulerName);
            q.UseTimeProvider(TimeProvider.System);
            q.UsePersistentStore(store =>
            {
                // One data source per process: the store borrows the ledger's (built from ConnectionStrings:Ledger).
                store.UsePostgres(ds => ds.DataSourceFactory = sp => sp.GetRequiredService<NpgsqlDataSource>());
                store.UseClustering();
                store.UseSystemTextJsonSerializer();
                store.ConfigureStore(o =>
                {
                    o.TablePrefix = "qrtz_";
                    o.SchemaProvisioning = SchemaProvisioning.Validate;
                });
            });

            AddJob<InvalidTokenJob>(q, RetentionJobNames.InvalidTokens, retention.InvalidTokenInterval);
            AddJob<PushLogPurgeJob>(q, RetentionJobNames.PushLogs, retention.PurgeInterval);
            AddJob<LogFileRetentionJob>(q, RetentionJobNames.LogFiles, retention.PurgeInterval);
        });
        services.Configure<QuartzOptions>(o =>
        {
            // A restart replaces each trigger with the configured one but keeps its firing history, so a changed
            // interval applies while a restart neither re-fires a run that happened nor forgets one that was missed.
            o.Scheduling.OverwriteExistingData = true;
            o.Scheduling.ScheduleTriggerRelativeToReplacedTrigger = true;
        });
        services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
    }

    private static void AddJob<TJob>(IQuartzBuilder q, string name, TimeSpan interval) where TJob : IJob
    {
        var key = new JobKey(name, Group);
        q.AddJob<TJob>(j => j.WithIdentity(key).StoreDurably().DisallowConcurrentExecution());
        q.AddTrigger<TJob>(t => t
            .WithIdentity(name, Group)
            .ForJob(key)
            .StartNow()
            // A run missed while every scheduler was down fires once at the next start, then the interval resumes
            // from there (missed runs are not replayed one by one: one purge catches up with all of them).
            .WithSimpleSchedule(s => s
                .WithInterval(interval)
                .RepeatForever()
                .WithMisfireInstruction(SimpleTriggerMisfireInstruction.NowWithExistingCount)));
    }
}
