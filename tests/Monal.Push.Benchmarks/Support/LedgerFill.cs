using Monal.Push.Ledger.Events;
using Npgsql;
using NpgsqlTypes;

namespace Monal.Push.Benchmarks.Support;

/// <summary>One stored event row, in the shape <c>EventStore</c> writes (migrations/0001_event_store.sql).</summary>
internal readonly record struct FillRow(Guid StreamId, long Version, object Event, DateTimeOffset Timestamp);

/// <summary>
/// Fills the ledger fast for benchmarks that need a large one: multi-row INSERTs (unnest of arrays, 5,000 rows each,
/// from 4 connections) into <c>events</c> or <c>push_events</c> with the store's JSON and stored names, then one
/// <c>streams</c> row per stream at its highest version. Not the append path: that is what <c>ledger</c> measures.
/// </summary>
internal static class LedgerFill
{
    private const int Chunk = 5_000;

    public static async Task InsertAsync(NpgsqlDataSource dataSource, long count, Func<long, FillRow> row, int connections = 4)
    {
        long next = 0;
        var workers = Enumerable.Range(0, connections).Select(async _ =>
        {
            while (true)
            {
                var start = Interlocked.Add(ref next, Chunk) - Chunk;
                if (start >= count)
                {
                    return;
                }

                var n = (int)Math.Min(Chunk, count - start);
                var rows = new FillRow[n];
                for (var i = 0; i < n; i++)
                {
                    rows[i] = row(start + i);
                }

                foreach (var group in rows.GroupBy(r => EventTypes.IsPushEvent(r.Event.GetType())))
                {
                    await InsertChunkAsync(dataSource, group.Key ? "push_events" : "events", [.. group]);
                }
            }
        }).ToArray();
        await Task.WhenAll(workers);
    }

    /// <summary>One <c>streams</c> row per stream found in either table, at its highest version.</summary>
    public static async Task WriteStreamsAsync(NpgsqlDataSource dataSource, string type = "device")
    {
        await using var cmd = dataSource.CreateCommand("""
            insert into streams (id, type, version, created_at, updated_at)
            select stream_id, $1, max(version), min("timestamp"), max("timestamp")
            from (select stream_id, version, "timestamp" from events
                  union all select stream_id, version, "timestamp" from push_events) e
            group by stream_id
            on conflict (id) do update set version = excluded.version, updated_at = excluded.updated_at
            """);
        cmd.CommandTimeout = 0;
        cmd.Parameters.Add(new() { Value = type });
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task InsertChunkAsync(NpgsqlDataSource dataSource, string table, FillRow[] rows)
    {
        await using var cmd = dataSource.CreateCommand($"""
            insert into {table} (stream_id, version, type, data, "timestamp")
            select s, v, t, d::jsonb, ts from unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[]) as u(s, v, t, d, ts)
            """);
        cmd.CommandTimeout = 0;
        cmd.Parameters.Add(new() { Value = rows.Select(r => r.StreamId).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        cmd.Parameters.Add(new() { Value = rows.Select(r => r.Version).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        cmd.Parameters.Add(new() { Value = rows.Select(r => EventTypes.NameOf(r.Event.GetType())).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = rows.Select(r => System.Text.Encoding.UTF8.GetString(EventTypes.Serialize(r.Event))).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = rows.Select(r => r.Timestamp).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        await cmd.ExecuteNonQueryAsync();
    }
}
