using Monal.Push.Purge.Scheduling;
using Quartz;

namespace Monal.Push.Purge.PurgingPushLogs;

/// <summary>Quartz job: deletes push events and push-log rows older than Retention:PushLog (every Retention:PurgeInterval).</summary>
[DisallowConcurrentExecution]
internal sealed class PushLogPurgeJob(RetentionJobs jobs) : IJob
{
    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default) =>
        await jobs.RunAsync(RetentionJobNames.PushLogs, dryRun: false, cancellationToken);
}
