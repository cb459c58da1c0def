using System.Diagnostics;
using System.Globalization;
using HdrHistogram;
using Npgsql;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// While a phase runs, every 10 ms on a connection of its own: a round trip that commits nothing (<c>select 1</c>) and
/// the smallest durable commit (one row inserted, its own transaction, <c>synchronous_commit</c> as the cluster has it).
/// Their latencies are a floor for any publish that is answered after a commit on this machine under this load: the
/// benchmark process, serve and PostgreSQL share the cores and the WAL (docs/benchmarks.md, "Issue 16, third pass").
/// </summary>
internal sealed class CommitProbe : IAsyncDisposable
{
    private readonly LongHistogram _roundTrip = new(60_000_000, 3);
    private readonly LongHistogram _commit = new(60_000_000, 3);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _probing;

    private CommitProbe(NpgsqlDataSource dataSource) => _probing = Task.Run(() => ProbeAsync(dataSource, _stop.Token));

    public static CommitProbe Start(NpgsqlDataSource dataSource) => new(dataSource);

    /// <summary>Stops probing and describes both latencies (p50, p99, max in ms).</summary>
    public async Task<string> StopAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _probing;
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
        catch (NpgsqlException ex)
        {
            return "probe failed: " + ex.Message;
        }

        return _commit.TotalCount == 0 ? "" : $"round trip (select 1) {Describe(_roundTrip)}; one-row commit {Describe(_commit)}";
    }

    private static string Describe(LongHistogram h) => string.Create(CultureInfo.InvariantCulture,
        $"p50 {h.GetValueAtPercentile(50) / 1000.0:0.00} p99 {h.GetValueAtPercentile(99) / 1000.0:0.00} max {h.GetMaxValue() / 1000.0:0.0} ms ({h.TotalCount:N0})");

    private async Task ProbeAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using (var create = new NpgsqlCommand("create table if not exists bench_commit_probe (id bigint generated always as identity, at timestamptz)", connection))
        {
            await create.ExecuteNonQueryAsync(ct);
        }

        await using var select = new NpgsqlCommand("select 1", connection);
        await using var insert = new NpgsqlCommand("insert into bench_commit_probe (at) values (now())", connection);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        while (await timer.WaitForNextTickAsync(ct))
        {
            var start = Stopwatch.GetTimestamp();
            await select.ExecuteScalarAsync(ct);
            var selected = Stopwatch.GetTimestamp();
            await insert.ExecuteNonQueryAsync(ct);
            _roundTrip.RecordValue((long)Stopwatch.GetElapsedTime(start, selected).TotalMicroseconds);
            _commit.RecordValue((long)Stopwatch.GetElapsedTime(selected).TotalMicroseconds);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }
}
