using Monal.Push.Purge.Scheduling;
using Quartz;

namespace Monal.Push.Purge.KeepingLogFiles;

/// <summary>Quartz job: deletes log files older than Retention:LogFiles (every Retention:PurgeInterval).</summary>
[DisallowConcurrentExecution]
internal sealed class LogFileRetentionJob(RetentionJobs jobs) : IJob
{
    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default) =>
        await jobs.RunAsync(RetentionJobNames.LogFiles, dryRun: false, cancellationToken);
}
