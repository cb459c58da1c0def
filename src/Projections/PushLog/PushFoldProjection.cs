using Monal.Push.Ledger.EventStore;
using Monal.Push.Projections.Daemon;
using Npgsql;

namespace Monal.Push.Projections.PushLog;

/// <summary>
/// An async projection of push requests and their outcomes, folded by its own SQL: a page of events through
/// <see cref="PushPage"/> (requests, then outcomes) and a replayed range through <see cref="PushRange"/>.
/// </summary>
internal abstract class PushFoldProjection(string requestsSql, string outcomesSql, string rangeSql) : IAsyncProjection, IRangeReplay
{
    public abstract string Name { get; }

    public abstract IReadOnlyList<string> Tables { get; }

    public ValueTask ApplyAsync(NpgsqlBatch batch, IReadOnlyList<RecordedEvent> events, CancellationToken ct)
    {
        PushPage.AddTo(batch, events, requestsSql, outcomesSql);
        return ValueTask.CompletedTask;
    }

    public void AddRange(NpgsqlBatch batch, long after, long upTo)
    {
        ArgumentNullException.ThrowIfNull(batch);
        batch.BatchCommands.Add(PushRange.Command(rangeSql, after, upTo));
    }
}
