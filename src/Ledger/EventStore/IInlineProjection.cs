using Npgsql;

namespace Monal.Push.Ledger.EventStore;

/// <summary>
/// A projection that runs inside the append transaction (Marten's inline lifecycle): what it adds to the batch
/// commits or rolls back with the events, so a read model it keeps never lags behind an acknowledged append.
/// It may refuse an append by raising SQLSTATE MPG01 with a constraint name (see AppendRejectedException).
/// </summary>
public interface IInlineProjection
{
    /// <summary>Adds the projection's statements for these events (in append order) to the batch.</summary>
    void Project(NpgsqlBatch batch, IReadOnlyList<PendingEvent> events);
}

/// <summary>Runs in the transaction that hard-deletes a stream, so read models lose their rows with it.</summary>
public interface IStreamDeletionHook
{
    /// <summary>Adds the statements that delete what belongs to the stream.</summary>
    void OnDelete(NpgsqlBatch batch, Guid streamId);
}
