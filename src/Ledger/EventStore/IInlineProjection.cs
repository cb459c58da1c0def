using Npgsql;

namespace Monal.Push.Ledger.EventStore;

/// <summary>
/// A projection that runs inside the append transaction (Marten's inline lifecycle): what it adds to the batch
/// commits or rolls back with the events, so a read model it keeps never lags behind an acknowledged append.
/// It may refuse an append by raising SQLSTATE MPG01 with a constraint name (see AppendRejectedException).
/// </summary>
public interface IInlineProjection
{
    /// <summary>
    /// Adds the projection's statements for these events (in append order) to the batch, and returns what this
    /// process must do once that batch has committed (<see langword="null"/> when nothing).
    /// </summary>
    AfterCommit? Project(NpgsqlBatch batch, IReadOnlyList<PendingEvent> events);
}

/// <summary>
/// The in-process consequence of one inline projection's statements, run by the store after their batch committed
/// and before any caller of that batch resumes; never run for a batch that rolled back. It runs on the store's
/// writer, so it must be quick and must not throw. The delivery queue uses it to hand the pushes it claimed in the
/// append transaction to the local dispatcher without another round trip.
/// </summary>
public delegate void AfterCommit();

/// <summary>Runs in the transaction that hard-deletes a stream, so read models lose their rows with it.</summary>
public interface IStreamDeletionHook
{
    /// <summary>Adds the statements that delete what belongs to the stream.</summary>
    void OnDelete(NpgsqlBatch batch, Guid streamId);
}
