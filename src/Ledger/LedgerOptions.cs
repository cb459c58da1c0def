namespace Monal.Push.Ledger;

/// <summary>Options of the ledger (configuration section <c>Ledger</c>).</summary>
public sealed class LedgerOptions
{
    /// <summary>Apply migrations when the host starts.</summary>
    public bool MigrateOnStart { get; set; } = true;

    /// <summary>
    /// At start, wait (with backoff, saying so) for a database that is down instead of failing: `serve` does; an admin
    /// verb turns it off so that it exits 1 at once (docs/operators.md, exit codes).
    /// </summary>
    public bool WaitForDatabase { get; set; } = true;

    /// <summary>Group commit: many concurrent appends share one transaction and one round trip.</summary>
    public bool GroupCommit { get; set; } = true;

    /// <summary>At most this many appends share one transaction.</summary>
    public int MaxBatch { get; set; } = 512;

    /// <summary>
    /// At most one NOTIFY of new events (which wakes the projection daemon, on whichever node leads it) per interval;
    /// the first commit after a quiet spell is notified at once. Each NOTIFY is a transaction of its own on the
    /// database-wide notify lock: at 1,000 publishes/s, without a bound, about one for every append batch
    /// (docs/benchmarks.md, "Issue 16, fifth pass"). Zero: one in flight at a time, no interval.
    /// </summary>
    public TimeSpan NotifyInterval { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Concurrent group-commit writers (connections). Two: while one commits, the other gathers the next batch, so the
    /// batches stay large; with four, end to end on two cores, each committed smaller batches and the database spent
    /// more per publish (docs/benchmarks.md, "Issue 16, sixth pass"; the ledger alone was measured with 4 to 8). The
    /// writers after the first join in only once a backlog waits (GroupCommitter.BacklogForMoreWriters).
    /// </summary>
    public int Writers { get; set; } = 2;

    /// <summary>
    /// How long an append nobody waits on promptly (a push's outcome, recorded after Apple answered) may wait for
    /// others to share its transaction; they go on sooner once 64 have gathered. At 1,000 publishes/s the outcomes
    /// otherwise committed about three at a time, each commit with its own queue and device statements
    /// (docs/benchmarks.md, "Issue 16, twelfth pass"). Zero: they commit as any other append. At most one second.
    /// </summary>
    public TimeSpan DeferredLinger { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// How the retention purge removes a push-event day partition (docs/benchmarks.md, "Push purge", measures both).
    /// </summary>
    public PartitionRemoval PartitionRemoval { get; set; } = PartitionRemoval.DetachConcurrently;

    /// <summary>The master key as base64 (32 bytes); when empty, <see cref="MasterKeyFile"/> is used.</summary>
    public string? MasterKey { get; set; }

    /// <summary>Where the master key file lives; default <c>master.key</c> under the data folder, created on first start.</summary>
    public string? MasterKeyFile { get; set; }
}

/// <summary>How the retention purge removes an expired push-event day partition.</summary>
public enum PartitionRemoval
{
    /// <summary>
    /// <c>ALTER TABLE push_events DETACH PARTITION … CONCURRENTLY</c>, then <c>DROP TABLE</c> of the detached table: the
    /// parent is only ever locked SHARE UPDATE EXCLUSIVE, which appends (ROW EXCLUSIVE) do not wait for, even while
    /// the detach itself waits for older transactions to finish.
    /// </summary>
    DetachConcurrently,

    /// <summary>
    /// <c>DROP TABLE</c> of the partition: takes ACCESS EXCLUSIVE on push_events, so appends queue behind it, and behind
    /// whatever transaction it waits for.
    /// </summary>
    Drop,
}

/// <summary>The data folder (configuration section <c>Data</c>).</summary>
public sealed class DataOptions
{
    /// <summary>Embedded database, log files and key file live here.</summary>
    public string Path { get; set; } = "var";
}
