using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Npgsql;
using NpgsqlTypes;

namespace Monal.Push.Projections.PushLog;

/// <summary>
/// The pushes and push outcomes of one page of the global log, as column arrays for unnest(). Shared by the push
/// log and domain usage, which apply the same outcome rules (monal_outcome_rank in 0003_read_models.sql):
/// PushDelivered → delivered; PushFailed → failed, or expired when it failed at or after the push's expiry, or still
/// pending when it was transient (retried); TokenInvalidated → invalidated; TokenRejected → rejected.
/// </summary>
internal sealed class PushPage
{
    private readonly List<PushRequested> _requests = [];
    private readonly List<(long Seq, Guid PushId, string Kind, int Status, string? Reason, DateTimeOffset At, double? Latency, bool Transient)> _outcomes = [];

    public PushPage(IReadOnlyList<RecordedEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        foreach (var e in events)
        {
            switch (e.Data)
            {
                case PushRequested r:
                    _requests.Add(r);
                    break;
                case PushDelivered d:
                    _outcomes.Add((e.Sequence, d.PushId, "delivered", 200, null, d.DeliveredAt, d.LatencyMs, false));
                    break;
                case PushFailed f:
                    _outcomes.Add((e.Sequence, f.PushId, "failed", f.Status, f.Reason, f.FailedAt, null, f.Transient));
                    break;
                case TokenInvalidated t:
                    _outcomes.Add((e.Sequence, t.PushId, "invalidated", 410, t.Reason, t.InvalidatedAt, null, false));
                    break;
                case TokenRejected t:
                    _outcomes.Add((e.Sequence, t.PushId, "rejected", 400, t.Reason, t.RejectedAt, null, false));
                    break;
            }
        }
    }

    /// <summary>Adds a page's statements: its requests, then its outcomes (each only when the page has any).</summary>
    public static void AddTo(NpgsqlBatch batch, IReadOnlyList<RecordedEvent> events, string requestsSql, string outcomesSql)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var page = new PushPage(events);
        if (page.HasRequests)
        {
            batch.BatchCommands.Add(page.RequestsCommand(requestsSql));
        }

        if (page.HasOutcomes)
        {
            batch.BatchCommands.Add(page.OutcomesCommand(outcomesSql));
        }
    }

    public bool HasRequests => _requests.Count > 0;

    public bool HasOutcomes => _outcomes.Count > 0;

    /// <summary>$1 push_id, $2 device_id, $3 domain, $4 requested_at, $5 expires_at.</summary>
    public NpgsqlBatchCommand RequestsCommand(string sql)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        cmd.Parameters.Add(Array(_requests.Select(r => r.PushId).ToArray(), NpgsqlDbType.Uuid));
        cmd.Parameters.Add(Array(_requests.Select(r => r.DeviceId).ToArray(), NpgsqlDbType.Uuid));
        cmd.Parameters.Add(Array(_requests.Select(r => r.Domain).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(_requests.Select(r => PgTime.Iso(r.RequestedAt)).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(_requests.Select(r => PgTime.Iso(r.ExpiresAt)).ToArray(), NpgsqlDbType.Text));
        return cmd;
    }

    /// <summary>
    /// $1 seq, $2 push_id, $3 kind, $4 status, $5 reason, $6 at, $7 latency_ms, $8 transient; the SQL opens with
    /// <see cref="OutcomesCte"/>.
    /// </summary>
    public NpgsqlBatchCommand OutcomesCommand(string sql)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        cmd.Parameters.Add(Array(_outcomes.Select(o => o.Seq).ToArray(), NpgsqlDbType.Bigint));
        cmd.Parameters.Add(Array(_outcomes.Select(o => o.PushId).ToArray(), NpgsqlDbType.Uuid));
        cmd.Parameters.Add(Array(_outcomes.Select(o => o.Kind).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(_outcomes.Select(o => o.Status).ToArray(), NpgsqlDbType.Integer));
        cmd.Parameters.Add(Array(_outcomes.Select(o => o.Reason).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(_outcomes.Select(o => PgTime.Iso(o.At)).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(_outcomes.Select(o => o.Latency).ToArray(), NpgsqlDbType.Double));
        cmd.Parameters.Add(Array(_outcomes.Select(o => o.Transient).ToArray(), NpgsqlDbType.Boolean));
        return cmd;
    }

    /// <summary>
    /// The page's outcome events joined to <paramref name="table"/> (which has push_id, expires_at, outcome), each
    /// with its resulting outcome, reduced to the one event per push that decides it: the most final, the first among
    /// final ones, the last among transient ones (what applying them one by one would leave). Defines CTE "o".
    /// </summary>
    public static string OutcomesCte(string table, string extraColumns, string source = PageOutcomes, string leading = "with") => $"""
        {leading} u as (
            {source}
        ), c as (
            select u.*, p.outcome as old, {extraColumns},
                   case when u.kind = 'failed' and u.at >= p.expires_at then 'expired'
                        when u.kind = 'failed' and u.transient then 'pending'
                        else u.kind end as outcome
            from u join {table} p on p.push_id = u.push_id
        ), o as (
            select distinct on (push_id) * from c
            order by push_id, monal_outcome_rank(outcome) desc,
                     case when monal_outcome_rank(outcome) = 0 then -seq else seq end
        )
        """;

    /// <summary>The page's outcome events (parameters of <see cref="OutcomesCommand"/>).</summary>
    public const string PageOutcomes = """
        select * from unnest($1::bigint[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[]::timestamptz[],
                             $7::double precision[], $8::bool[])
            as u(seq, push_id, kind, status, reason, at, latency, transient)
        """;

    private static NpgsqlParameter Array<T>(T[] values, NpgsqlDbType type) =>
        new() { Value = values, NpgsqlDbType = NpgsqlDbType.Array | type };
}
