using Monal.Push.Projections.Devices;
using Npgsql;

namespace Monal.Push.Projections.Daemon;

/// <summary>One projection's progress, for <c>monal-push projections status</c>, /health and /metrics.</summary>
/// <param name="Name">The projection.</param>
/// <param name="Kind"><c>inline</c> (in the append transaction) or <c>async</c> (the daemon).</param>
/// <param name="Position">The last global position applied.</param>
/// <param name="HighWater">The last global position of a committed event.</param>
/// <param name="Lag">Positions the projection is behind (0 for inline projections by construction).</param>
/// <param name="LastError">The last failure (exception type and SQLSTATE only), if any.</param>
/// <param name="LastErrorAt">When it happened.</param>
/// <param name="UpdatedAt">When the checkpoint last moved.</param>
public sealed record ProjectionStatusRow(
    string Name,
    string Kind,
    long Position,
    long HighWater,
    long Lag,
    string? LastError,
    DateTimeOffset? LastErrorAt,
    DateTimeOffset? UpdatedAt);

/// <summary>Reports how far every projection has come.</summary>
public sealed class ProjectionStatus(NpgsqlDataSource dataSource, IEnumerable<IAsyncProjection> projections)
{
    /// <summary>One row per projection: the inline device projection first, then the async ones by name.</summary>
    public async Task<IReadOnlyList<ProjectionStatusRow>> GetStatusAsync(CancellationToken ct = default)
    {
        var high = await Checkpoints.HighWaterAsync(dataSource, ct);
        var rows = new Dictionary<string, ProjectionStatusRow>(StringComparer.Ordinal);
        foreach (var p in projections)
        {
            rows[p.Name] = new ProjectionStatusRow(p.Name, "async", 0, high, high, null, null, null);
        }

        await using (var cmd = dataSource.CreateCommand(
            "select name, position, updated_at, last_error, last_error_at from projection_checkpoints"))
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                var position = reader.GetInt64(1);
                rows[reader.GetString(0)] = new ProjectionStatusRow(
                    reader.GetString(0),
                    "async",
                    position,
                    high,
                    Math.Max(0, high - position),
                    reader.IsDBNull(3) ? null : reader.GetString(3),
                    reader.IsDBNull(4) ? null : reader.GetFieldValue<DateTimeOffset>(4),
                    reader.GetFieldValue<DateTimeOffset>(2));
            }
        }

        return [
            new ProjectionStatusRow(DeviceProjection.Name, "inline", high, high, 0, null, null, null),
            .. rows.Values.OrderBy(r => r.Name, StringComparer.Ordinal)];
    }
}
