using Microsoft.Extensions.Logging;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;

namespace Monal.Push.Purge.Scheduling;

/// <summary>
/// Runs retention jobs and records each run, succeeded, failed or dry, as a <see cref="RetentionRun"/> on
/// <see cref="SystemStreams.Retention"/> (the audit's evidence). The Quartz jobs and `monal-push purge run` both
/// come through here.
/// </summary>
public sealed class RetentionJobs(
    IEnumerable<IRetentionTask> tasks,
    EventStore store,
    TimeProvider clock,
    ILogger<RetentionJobs> logger)
{
    /// <summary>The stream type of the system streams.</summary>

    /// <summary>Outcome of a run that completed.</summary>
    public const string Succeeded = "succeeded";

    private readonly IRetentionTask[] _tasks = [.. tasks];

    /// <summary>
    /// Runs one job (<see cref="RetentionJobNames"/>) and returns its evidence, which says what was (or in a dry run
    /// would be) deleted per category. A failure is recorded and returned with Outcome "failed: ExceptionType";
    /// cancellation is recorded and then thrown. An unknown name throws <see cref="ArgumentException"/>.
    /// </summary>
    public async Task<RetentionRun> RunAsync(string job, bool dryRun, CancellationToken ct)
    {
        var task = _tasks.FirstOrDefault(t => string.Equals(t.Job, job, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException(
                $"Unknown retention job '{job}'. Known jobs: {string.Join(", ", RetentionJobNames.All)}.", nameof(job));

        var startedAt = clock.GetUtcNow();
        var started = clock.GetTimestamp();
        var cutoff = task.CutoffFor(startedAt);
        var deleted = new SortedDictionary<string, long>(StringComparer.Ordinal);
        string outcome;
        Exception? failure = null;
        var cancelled = false;
        try
        {
            await task.RunAsync(cutoff, dryRun, deleted, ct);
            outcome = Succeeded;
        }
        catch (OperationCanceledException ex) when (ct.IsCancellationRequested)
        {
            outcome = "cancelled";
            failure = ex;
            cancelled = true;
        }
#pragma warning disable CA1031 // A failed job is recorded as evidence and waits for its next trigger.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            outcome = "failed: " + ex.GetType().Name;
            failure = ex;
        }

        var run = new RetentionRun(
            Guid.CreateVersion7(),
            task.Job,
            cutoff,
            new Dictionary<string, long>(deleted, StringComparer.Ordinal),
            Math.Round(clock.GetElapsedTime(started).TotalMilliseconds, 3),
            outcome,
            dryRun,
            startedAt);

        try
        {
            // Evidence is written even when the caller gave up: a run that deleted something must say so.
            await store.AppendAsync(SystemStreams.Retention, StreamTypes.System, ExpectedVersion.Any, [run], ct: CancellationToken.None);
        }
#pragma warning disable CA1031 // Losing the evidence must not hide the job's own failure; it is logged as an error of its own.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.EvidenceFailed(logger, task.Job, ex);
            if (failure is null)
            {
                throw;
            }
        }

        if (failure is not null)
        {
            Log.RetentionRunFailed(logger, task.Job, failure);
        }
        else
        {
            Log.RetentionRunFinished(logger, task.Job, run.DurationMs, Describe(run.Deleted), dryRun);
        }

        if (cancelled)
        {
            throw new OperationCanceledException("The retention run was cancelled after recording what it did.", failure, ct);
        }

        return run;
    }

    /// <summary>Runs every job in turn (`purge run` without --job).</summary>
    public async Task<IReadOnlyList<RetentionRun>> RunAllAsync(bool dryRun, CancellationToken ct)
    {
        var runs = new List<RetentionRun>();
        foreach (var job in RetentionJobNames.All)
        {
            runs.Add(await RunAsync(job, dryRun, ct));
        }

        return runs;
    }

    /// <summary>"push_events=12, push_log=3", or "nothing".</summary>
    public static string Describe(IReadOnlyDictionary<string, long> deleted)
    {
        ArgumentNullException.ThrowIfNull(deleted);
        return deleted.Count == 0
            ? "nothing"
            : string.Join(", ", deleted.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));
    }
}
