using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// `--statements N`: where PostgreSQL's time and WAL went in each phase, from pg_stat_statements (reset when the
/// phase starts, read when it ends): the top N statements by execution time, each with its calls, mean time, rows and
/// WAL records, and what all of serve's statements cost a publish. Statements are counted at the top level
/// (<c>pg_stat_statements.track = top</c>): a PL/pgSQL function's inner statements are inside its call. The
/// benchmark's own statements (the probe, the samplers) are left out.
/// </summary>
internal static partial class PhaseStatements
{
    public static async Task ResetAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var reset = dataSource.CreateCommand("select pg_stat_statements_reset()");
        await reset.ExecuteNonQueryAsync(ct);
    }

    public static async Task<string> DescribeAsync(NpgsqlDataSource dataSource, int top, long publishes, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            select query, calls, total_exec_time, rows, wal_records, wal_fpi
            from pg_stat_statements
            order by total_exec_time desc
            """);
        var rows = new List<(string Query, long Calls, double Ms, long Rows, long Wal, long Fpi)>();
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                var query = Whitespace().Replace(reader.GetString(0), " ").Trim();
                if (IsBenchmarks(query))
                {
                    continue;
                }

                rows.Add((query, reader.GetInt64(1), reader.GetDouble(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5)));
            }
        }

        if (rows.Count == 0)
        {
            return "";
        }

        var totalMs = rows.Sum(r => r.Ms);
        var totalWal = rows.Sum(r => r.Wal);
        var perPublish = Math.Max(1, publishes);
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture,
            $"{rows.Count} statements ran {totalMs / 1000:N1} s, {totalMs * 1000 / perPublish:N0} µs and {(double)totalWal / perPublish:N1} WAL records a publish; the top {Math.Min(top, rows.Count)} by time:"));
        foreach (var r in rows.Take(top))
        {
            text.Append(CultureInfo.InvariantCulture,
                $"\n    {r.Ms / totalMs,4:P0} {r.Ms / 1000,6:N1} s  {r.Calls,9:N0} calls ({(double)r.Calls / perPublish:N2} a publish), {r.Ms / Math.Max(1, r.Calls):N3} ms and {(double)r.Rows / Math.Max(1, r.Calls):N1} rows a call, " +
                $"WAL {(double)r.Wal / perPublish:N1} records a publish ({r.Fpi:N0} full pages) | {Shorten(r.Query)}");
        }

        return text.ToString();
    }

    private static bool IsBenchmarks(string query) =>
        query.Contains("pg_stat", StringComparison.Ordinal) || query.Contains("bench_commit_probe", StringComparison.Ordinal)
        || query == "select $1" || query.StartsWith("select count(*) filter (where type = $1)", StringComparison.Ordinal);

    private static string Shorten(string query) => query.Length <= 110 ? query : query[..107] + "...";

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
