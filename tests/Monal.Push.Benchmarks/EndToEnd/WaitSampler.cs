using System.Globalization;
using Npgsql;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// Samples <c>pg_stat_activity</c> every 100 ms while a phase runs and counts what the database's client backends were
/// doing: on CPU (<c>active</c>, no wait event), waiting on a lock, on the WAL, on the client… The counts say where the
/// database's share of a publish goes, next to serve's CPU (docs/benchmarks.md, "Where the time goes").
/// </summary>
internal sealed class WaitSampler : IAsyncDisposable
{
    private readonly Dictionary<string, long> _counts = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampling;
    private readonly NpgsqlDataSource _dataSource;
    private readonly long _started = System.Diagnostics.Stopwatch.GetTimestamp();
    private long _samples;
    private double[]? _walBefore;

    private WaitSampler(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _sampling = Task.Run(() => SampleAsync(dataSource, _stop.Token));
    }

    public static async Task<WaitSampler> StartAsync(NpgsqlDataSource dataSource)
    {
        var sampler = new WaitSampler(dataSource);
        sampler._walBefore = await ReadWalAsync(dataSource);
        return sampler;
    }

    // Commits, WAL flushes and WAL volume so far (pg_stat_database, pg_stat_wal; PostgreSQL 14 or later), and the
    // checkpoints completed with their write and sync time (pg_stat_bgwriter, PostgreSQL 15 or earlier): a commit
    // stalled behind a checkpoint's fsyncs shows there.
    private static async Task<double[]?> ReadWalAsync(NpgsqlDataSource dataSource)
    {
        try
        {
            await using var cmd = dataSource.CreateCommand("""
                select (select xact_commit from pg_stat_database where datname = current_database())::float8,
                       wal_sync::float8, wal_records::float8, wal_fpi::float8, wal_bytes::float8,
                       (checkpoints_timed + checkpoints_req)::float8, checkpoint_write_time, checkpoint_sync_time
                from pg_stat_wal, pg_stat_bgwriter
                """);
            await using var reader = await cmd.ExecuteReaderAsync();
            await reader.ReadAsync();
            return [.. Enumerable.Range(0, 8).Select(reader.GetDouble)];
        }
        catch (NpgsqlException)
        {
            return null;
        }
    }

    /// <summary>Commits, WAL flushes, records, full-page images and bytes per second since the start, and the checkpoints completed meanwhile.</summary>
    public async Task<string> WalSinceStartAsync()
    {
        var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(_started).TotalSeconds;
        var after = await ReadWalAsync(_dataSource);
        if (_walBefore is null || after is null || seconds <= 0)
        {
            return "";
        }

        double Rate(int i) => (after[i] - _walBefore[i]) / seconds;
        double Since(int i) => after[i] - _walBefore[i];
        return string.Create(CultureInfo.InvariantCulture,
            $"commits {Rate(0):N0}/s, WAL flushes {Rate(1):N0}/s, WAL records {Rate(2):N0}/s, full-page images {Rate(3):N0}/s, WAL {Rate(4) / 1048576:N1} MiB/s; " +
            $"checkpoints completed {Since(5):N0} (writing {Since(6) / 1000:N1} s, syncing {Since(7) / 1000:N1} s)");
    }

    /// <summary>Stops sampling and describes the most frequent states, as the average number of backends in each.</summary>
    public async Task<string> StopAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _sampling;
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        if (_samples == 0)
        {
            return "no samples";
        }

        return string.Join(", ", _counts.OrderByDescending(c => c.Value).Take(6)
            .Select(c => $"{c.Key} {(double)c.Value / _samples:0.00}".ToString(CultureInfo.InvariantCulture)));
    }

    private async Task SampleAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand("""
            select case when state = 'active' and wait_event is null then 'cpu'
                        when state = 'active' then wait_event_type || ':' || wait_event
                        when state like 'idle in transaction%' then 'idle-in-tx'
                        else null end
            from pg_stat_activity
            where backend_type = 'client backend' and pid <> pg_backend_pid()
            """, connection);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        while (await timer.WaitForNextTickAsync(ct))
        {
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                if (!reader.IsDBNull(0))
                {
                    var key = reader.GetString(0);
                    _counts[key] = _counts.GetValueOrDefault(key) + 1;
                }
            }

            _samples++;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }
}
