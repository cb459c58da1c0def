using Monal.Push.Ledger.EventStore;
using Npgsql;

namespace Monal.Push.Projections.Daemon;

/// <summary>
/// A read model the daemon folds from the global log, page by page, in global order. The statements it adds run in
/// one transaction with the checkpoint update, so a page is applied entirely or not at all.
/// </summary>
public interface IAsyncProjection
{
    /// <summary>The projection's checkpoint name (also used by <c>monal-push projections rebuild NAME</c>).</summary>
    string Name { get; }

    /// <summary>The tables a rebuild truncates.</summary>
    IReadOnlyList<string> Tables { get; }

    /// <summary>Adds the statements for these events (contiguous, in global order) to the page's batch.</summary>
    ValueTask ApplyAsync(NpgsqlBatch batch, IReadOnlyList<RecordedEvent> events, CancellationToken ct);
}
