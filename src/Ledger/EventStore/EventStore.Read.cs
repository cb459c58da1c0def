using Monal.Push.Ledger.Events;
using Npgsql;

namespace Monal.Push.Ledger.EventStore;

public sealed partial class EventStore
{
    private const string Columns = "seq, stream_id, version, type, data::text, metadata::text, \"timestamp\"";

    /// <summary>Reads a stream in version order (empty when it does not exist).</summary>
    public async Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(Guid streamId, CancellationToken ct = default)
    {
        await using var cmd = _dataSource.CreateCommand($"""
            select {Columns} from events where stream_id = $1
            union all
            select {Columns} from push_events where stream_id = $1
            order by version
            """);
        cmd.Parameters.Add(new() { Value = streamId });
        return await ReadEventsAsync(cmd, ct);
    }

    /// <summary>The stream's current version, or 0 when it does not exist.</summary>
    public async Task<long> GetStreamVersionAsync(Guid streamId, CancellationToken ct = default)
    {
        await using var cmd = _dataSource.CreateCommand("select version from streams where id = $1");
        cmd.Parameters.Add(new() { Value = streamId });
        return await cmd.ExecuteScalarAsync(ct) is long v ? v : 0;
    }

    /// <summary>
    /// Reads up to <paramref name="max"/> visible events after a global position, in position order. Positions can
    /// have gaps and can become visible out of order: use <see cref="EventFeed"/> to read without skipping.
    /// </summary>
    public async Task<IReadOnlyList<RecordedEvent>> ReadAllAsync(long after, int max, CancellationToken ct = default)
    {
        await using var cmd = _dataSource.CreateCommand($"""
            (select {Columns} from events where seq > $1 order by seq limit $2)
            union all
            (select {Columns} from push_events where seq > $1 order by seq limit $2)
            order by seq limit $2
            """);
        cmd.Parameters.Add(new() { Value = after });
        cmd.Parameters.Add(new() { Value = max });
        return await ReadEventsAsync(cmd, ct);
    }

    /// <summary>Like <see cref="ReadAllAsync"/>, the positions only.</summary>
    public async Task<long[]> ReadPositionsAsync(long after, int max, CancellationToken ct = default)
    {
        await using var cmd = _dataSource.CreateCommand("""
            (select seq from events where seq > $1 order by seq limit $2)
            union all
            (select seq from push_events where seq > $1 order by seq limit $2)
            order by seq limit $2
            """);
        cmd.Parameters.Add(new() { Value = after });
        cmd.Parameters.Add(new() { Value = max });
        var list = new List<long>(Math.Min(max, 4096));
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            list.Add(reader.GetInt64(0));
        }

        return [.. list];
    }

    /// <summary>The highest position taken so far (visible or not).</summary>
    public async Task<long> GetLastSequenceAsync(CancellationToken ct = default)
    {
        await using var cmd = _dataSource.CreateCommand("select case when is_called then last_value else 0 end from event_seq");
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private static async Task<IReadOnlyList<RecordedEvent>> ReadEventsAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        var list = new List<RecordedEvent>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var type = reader.GetString(3);
            var data = EventTypes.Deserialize(type, System.Text.Encoding.UTF8.GetBytes(reader.GetString(4)));
            var meta = reader.IsDBNull(5)
                ? null
                : System.Text.Json.JsonSerializer.Deserialize(reader.GetString(5), LedgerJson.Default.EventMetadata);
            list.Add(new RecordedEvent(
                reader.GetInt64(0),
                reader.GetGuid(1),
                reader.GetInt64(2),
                type,
                data,
                meta,
                reader.GetFieldValue<DateTimeOffset>(6)));
        }

        return list;
    }
}
