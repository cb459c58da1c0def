namespace Monal.Push.Purge.Scheduling;

/// <summary>The work of one retention job, run by <see cref="RetentionJobs"/> (which records the evidence).</summary>
public interface IRetentionTask
{
    /// <summary>The job's name (<see cref="RetentionJobNames"/>).</summary>
    string Job { get; }

    /// <summary>What is older than this is removed, for a run at <paramref name="now"/>.</summary>
    DateTimeOffset CutoffFor(DateTimeOffset now);

    /// <summary>
    /// Removes (or with <paramref name="dryRun"/> counts) what is due, adding counts per category to
    /// <paramref name="deleted"/> as it goes, so a run that fails half-way still says what it removed.
    /// </summary>
    Task RunAsync(DateTimeOffset cutoff, bool dryRun, IDictionary<string, long> deleted, CancellationToken ct);
}
