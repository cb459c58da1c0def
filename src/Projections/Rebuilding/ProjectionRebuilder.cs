using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Projections.Daemon;
using Monal.Push.Projections.Devices;
using Npgsql;

namespace Monal.Push.Projections.Rebuilding;

/// <summary>The outcome of one projection's rebuild.</summary>
/// <param name="Name">The projection.</param>
/// <param name="Events">Events replayed.</param>
/// <param name="Elapsed">Wall time.</param>
public readonly record struct ProjectionRebuildResult(string Name, long Events, TimeSpan Elapsed)
{
    /// <summary>Replay throughput.</summary>
    public double EventsPerSecond => Elapsed > TimeSpan.Zero ? Events / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// Rebuilds read models from the ledger while the gateway keeps appending (<c>monal-push projections rebuild</c>;
/// the benchmark project times <see cref="RebuildAsync"/> too).
/// </summary>
/// <remarks>
/// An async projection is rebuilt under its advisory lock (held on one connection for the whole rebuild, which
/// applies its pages over that same connection): the daemon's pages for it fail fast with MPC02 and wait, on every
/// node, and resume from the rebuilt checkpoint; if this process dies the lock goes with its session and the daemon
/// simply continues from the last rebuilt page. Tables are truncated and the checkpoint reset in one transaction;
/// once every position up to the high-water mark seen at the start is settled (committed or dead), projections that
/// can (<see cref="IRangeReplay"/>) replay ranges of <see cref="ProjectionsOptions.RebuildRange"/> positions inside the
/// database, others pages of <see cref="ProjectionsOptions.RebuildPageSize"/> events through their own apply; each
/// range or page moves the checkpoint in its transaction, and the daemon carries on from the target.
/// The inline device projection is rebuilt in one transaction from every stream's events (monal_devices_rebuild).
/// </remarks>
public sealed class ProjectionRebuilder(
    EventStore store,
    IEnumerable<IAsyncProjection> projections,
    IOptions<ProjectionsOptions> options,
    ILogger<ProjectionRebuilder> logger)
{
    private readonly IAsyncProjection[] _projections = [.. projections];

    /// <summary>Names accepted by <see cref="RebuildAsync"/>.</summary>
    public IReadOnlyList<string> Names => [DeviceProjection.Name, .. _projections.Select(p => p.Name)];

    /// <summary>
    /// Rebuilds the named projection, or all of them when <paramref name="name"/> is null. Progress reports
    /// (position reached, target position) per projection. This is also what the benchmark project times.
    /// </summary>
    public async Task<IReadOnlyList<ProjectionRebuildResult>> RebuildAsync(
        string? name, IProgress<(long Done, long Total)>? progress = null, CancellationToken ct = default)
    {
        if (name is not null && !Names.Contains(name, StringComparer.Ordinal))
        {
            throw new ArgumentException($"Unknown projection '{name}'. Known: {string.Join(", ", Names)}.", nameof(name));
        }

        var results = new List<ProjectionRebuildResult>();
        if (name is null or DeviceProjection.Name)
        {
            results.Add(await RebuildDevicesAsync(progress, ct));
        }

        foreach (var p in _projections.Where(p => name is null || p.Name == name))
        {
            results.Add(await RebuildAsync(p, progress, options.Value.RebuildPageSize, ct));
        }

        return results;
    }

    private async Task<ProjectionRebuildResult> RebuildDevicesAsync(IProgress<(long, long)>? progress, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        await using var connection = await store.DataSource.OpenConnectionAsync(ct);
        var events = await DeviceProjection.RebuildAsync(connection, ct);
        progress?.Report((events, events));
        Log.RebuildFinished(logger, DeviceProjection.Name, events, watch.ElapsedMilliseconds);
        return new ProjectionRebuildResult(DeviceProjection.Name, events, watch.Elapsed);
    }

    internal async Task<ProjectionRebuildResult> RebuildAsync(
        IAsyncProjection projection, IProgress<(long, long)>? progress, int pageSize, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        await using var connection = await store.DataSource.OpenConnectionAsync(ct);
        await ExecAsync(connection, "select pg_advisory_lock(hashtext('monal_projection:' || $1))", projection.Name, ct);
        try
        {
            var target = await Checkpoints.HighWaterAsync(store.DataSource, ct);
            var total = await CountAsync(connection, target, ct);
            Log.RebuildStarted(logger, projection.Name, total);
            await using (var tx = await connection.BeginTransactionAsync(ct))
            {
                await using (var truncate = new NpgsqlCommand($"truncate {string.Join(", ", projection.Tables)}", connection, tx))
                {
                    await truncate.ExecuteNonQueryAsync(ct);
                }

                await using (var reset = new NpgsqlCommand("""
                    insert into projection_checkpoints (name, position) values ($1, 0)
                    on conflict (name) do update set position = 0, updated_at = now(), last_error = null, last_error_at = null
                    """, connection, tx))
                {
                    reset.Parameters.Add(new() { Value = projection.Name });
                    await reset.ExecuteNonQueryAsync(ct);
                }

                await tx.CommitAsync(ct);
            }

            await WaitUntilSettledAsync(connection, ct);
            if (projection is IRangeReplay replay)
            {
                // Every position up to the target is now committed or dead: replay it in the database, range by range.
                var range = Math.Max(1, options.Value.RebuildRange);
                // A range's hashes and sorts fit in memory instead of spilling, and JIT stays off: the planner's
                // estimates for these CTEs are huge and compiling them cost seconds per range (this session only).
                await ExecAsync(connection, "select set_config('work_mem', $1, false), set_config('jit', 'off', false)", "256MB", ct);
                for (var from = 0L; from < target;)
                {
                    var upTo = Math.Min(target, from + range);
                    await using var batch = new NpgsqlBatch(connection);
                    batch.BatchCommands.Add(Checkpoints.AdvanceCommand(projection.Name, from, upTo));
                    replay.AddRange(batch, from, upTo);
                    batch.Timeout = 0;
                    await batch.ExecuteNonQueryAsync(ct);
                    from = upTo;
                    progress?.Report((from, target));
                }

                Log.RebuildFinished(logger, projection.Name, total, watch.ElapsedMilliseconds);
                return new ProjectionRebuildResult(projection.Name, total, watch.Elapsed);
            }

            var feed = new EventFeed(store);
            var position = 0L;
            var done = 0L;
            while (position < target)
            {
                var page = await feed.ReadNextAsync(position, pageSize, ct);
                if (page.Count == 0)
                {
                    await Task.Delay(20, ct); // a gap being proven dead
                    continue;
                }

                await Checkpoints.ApplyPageAsync(connection, projection, position, page, ct);
                position = page[^1].Sequence;
                done += page.Count;
                progress?.Report((Math.Min(position, target), target));
            }

            Log.RebuildFinished(logger, projection.Name, done, watch.ElapsedMilliseconds);
            return new ProjectionRebuildResult(projection.Name, done, watch.Elapsed);
        }
        finally
        {
            if (connection.State == System.Data.ConnectionState.Open)
            {
                await using (var reset = new NpgsqlCommand("reset work_mem; reset jit", connection))
                {
                    await reset.ExecuteNonQueryAsync(CancellationToken.None);
                }

                await ExecAsync(connection, "select pg_advisory_unlock(hashtext('monal_projection:' || $1))", projection.Name, CancellationToken.None);
            }
        }
    }

    /// <summary>
    /// Waits until every transaction that could still commit an event at or below the high-water mark read just
    /// before has ended (EventFeed.cs explains why an xmin past this xmax proves it).
    /// </summary>
    private static async Task WaitUntilSettledAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var xmax = await SnapshotAsync(connection, "pg_snapshot_xmax", ct);
        while (await SnapshotAsync(connection, "pg_snapshot_xmin", ct) < xmax)
        {
            await Task.Delay(10, ct);
        }
    }

    private static async Task<ulong> SnapshotAsync(NpgsqlConnection connection, string function, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"select {function}(pg_current_snapshot())::text", connection);
        return ulong.Parse((string)(await cmd.ExecuteScalarAsync(ct))!, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<long> CountAsync(NpgsqlConnection connection, long upTo, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "select (select count(*) from events where seq <= $1) + (select count(*) from push_events where seq <= $1)", connection);
        cmd.Parameters.Add(new() { Value = upTo });
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private static async Task ExecAsync(NpgsqlConnection connection, string sql, string name, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        cmd.Parameters.Add(new() { Value = name });
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
