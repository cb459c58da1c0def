using Monal.Push.Ledger.EventStore;
using Npgsql;

namespace Monal.Push.Projections.Daemon;

/// <summary>The projection_checkpoints table and the one-round-trip page apply shared by the daemon and rebuilds.</summary>
internal static class Checkpoints
{
    public const string Paused = "MPC02";
    public const string Moved = "MPC01";

    public static async Task<long> LoadAsync(NpgsqlDataSource dataSource, string name, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            with i as (
                insert into projection_checkpoints (name) values ($1) on conflict (name) do nothing returning position
            )
            select position from i union all select position from projection_checkpoints where name = $1
            """);
        cmd.Parameters.Add(new() { Value = name });
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>
    /// Applies one page and moves the checkpoint from <paramref name="expected"/> to the page's last position, in
    /// one implicit transaction and one round trip. Throws PostgresException MPC01 when the checkpoint moved and
    /// MPC02 while the projection is being rebuilt; nothing is applied then.
    /// </summary>
    public static async Task ApplyPageAsync(
        NpgsqlConnection connection, IAsyncProjection projection, long expected, IReadOnlyList<RecordedEvent> page, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(connection);
        batch.BatchCommands.Add(AdvanceCommand(projection.Name, expected, page[^1].Sequence));
        await projection.ApplyAsync(batch, page, ct);
        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The statement that opens every page: moves the checkpoint or refuses (MPC01, MPC02).</summary>
    public static NpgsqlBatchCommand AdvanceCommand(string name, long expected, long position)
    {
        var advance = new NpgsqlBatchCommand("select monal_checkpoint_advance($1, $2, $3)");
        advance.Parameters.Add(new() { Value = name });
        advance.Parameters.Add(new() { Value = expected });
        advance.Parameters.Add(new() { Value = position });
        return advance;
    }

    public static async Task RecordErrorAsync(NpgsqlDataSource dataSource, string name, string error, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "update projection_checkpoints set last_error = $2, last_error_at = now() where name = $1");
        cmd.Parameters.Add(new() { Value = name });
        cmd.Parameters.Add(new() { Value = error });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The highest position of a committed, visible event (0 when the log is empty).</summary>
    public static async Task<long> HighWaterAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "select greatest(coalesce((select max(seq) from events), 0), coalesce((select max(seq) from push_events), 0))");
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
