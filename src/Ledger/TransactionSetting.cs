using Npgsql;

namespace Monal.Push.Ledger;

/// <summary>
/// A setting for the rest of one transaction, as the first statement of a batch. An <see cref="NpgsqlBatch"/> sent
/// without <c>BeginTransaction</c> runs in one implicit transaction; there <c>SET LOCAL</c> does hold for the rest of
/// the batch, but PostgreSQL, which expects it inside BEGIN … COMMIT, raises a warning at every execution ("SET LOCAL
/// can only be used in transaction blocks"), formatted by the server and sent to the client each time.
/// <c>set_config(name, value, true)</c> is the same setting without that check: it holds for the statements after it
/// in the batch and is undone when the implicit transaction ends, so nothing leaks to the next user of a pooled
/// connection (the data source does not reset sessions: <see cref="LedgerDataSource"/>).
/// </summary>
public static class TransactionSetting
{
    /// <summary>This transaction's commit does not wait for its WAL to reach the disk.</summary>
    public static NpgsqlBatchCommand AsynchronousCommit() => Command("synchronous_commit", "off");

    /// <summary>Every statement after it in this transaction keeps the plan its connection made once.</summary>
    public static NpgsqlBatchCommand GenericPlans() => Command("plan_cache_mode", "force_generic_plan");

    /// <summary>
    /// Every statement after it in this transaction is planned for its parameters and the table sizes of the moment,
    /// never with a generic plan its connection cached earlier (see Monal.Push.Delivery's QueueStatement).
    /// </summary>
    public static NpgsqlBatchCommand CustomPlans() => Command("plan_cache_mode", "force_custom_plan");

    /// <summary>No statement after it in this transaction is JIT-compiled.</summary>
    public static NpgsqlBatchCommand NoJit() => Command("jit", "off");

    /// <summary>
    /// A batch of <paramref name="setting"/> and one statement, <paramref name="sql"/>, in one implicit transaction; add
    /// the parameters to <paramref name="statement"/>. Read its rows with <see cref="ReadAsync"/>.
    /// </summary>
    public static NpgsqlBatch Batch(NpgsqlDataSource dataSource, NpgsqlBatchCommand setting, string sql, out NpgsqlBatchCommand statement)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(setting);
        statement = new NpgsqlBatchCommand(sql);
        batch.BatchCommands.Add(statement);
        return batch;
    }

    /// <summary>Runs a <see cref="Batch"/> and returns its reader on the statement's rows, past the setting's.</summary>
    public static async Task<NpgsqlDataReader> ReadAsync(NpgsqlBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var reader = await batch.ExecuteReaderAsync(ct);
        await reader.NextResultAsync(ct);
        return reader;
    }

    // Both are constants of ours, written into the statement so that it is prepared once.
    private static NpgsqlBatchCommand Command(string name, string value) =>
        new($"select set_config('{name}', '{value}', true)");
}
