using Monal.Push.Purge.Scheduling;
using Quartz;

namespace Monal.Push.Purge.DeletingInvalidTokens;

/// <summary>Quartz job: erases devices whose token Apple declared invalid (Retention:InvalidTokenInterval).</summary>
[DisallowConcurrentExecution]
internal sealed class InvalidTokenJob(RetentionJobs jobs) : IJob
{
    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default) =>
        await jobs.RunAsync(RetentionJobNames.InvalidTokens, dryRun: false, cancellationToken);
}
