using Monal.Push.Ledger;
using Npgsql;

namespace Monal.Push.Delivery.Dispatching;

/// <summary>
/// The dispatcher's statements on push_queue (claim, renewal, hand-backs), each sent as a batch whose first statement
/// makes PostgreSQL plan it afresh (<see cref="TransactionSetting.CustomPlans"/>). push_queue swings between empty (a
/// drained backlog, a quiet hour, a fresh node) and tens of thousands of rows within seconds. A prepared statement that
/// a pooled connection has run five times gets a generic plan, cached until the next ANALYZE; one made while the
/// queue was empty joins it to the claimed rows by rescanning them for every row of the table (a nested loop with a
/// join filter), which is free when the queue is empty and quadratic once it is not: 45 s for 10,000 claims among
/// 20,000 rows, while the renewal holds their row locks, every outcome append waits on them and no publish is
/// answered (docs/benchmarks.md, "Issue 16, eighth pass"). A custom plan is made with the table's size of the moment.
/// Planning costs a millisecond or less, at most a few times a second.
/// </summary>
internal static class QueueStatement
{
    /// <summary>A batch of the setting and <paramref name="sql"/>; add the parameters to <paramref name="statement"/>.</summary>
    public static NpgsqlBatch Create(NpgsqlDataSource dataSource, string sql, out NpgsqlBatchCommand statement) =>
        TransactionSetting.Batch(dataSource, TransactionSetting.CustomPlans(), sql, out statement);
}
