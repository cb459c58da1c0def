using Npgsql;

namespace Monal.Push.Projections.PushLog;

/// <summary>
/// The same push rules as <see cref="PushPage"/>, read straight from the event tables for a range of positions
/// ($1 after, $2 up to), so a rebuild never ships events to .NET and back. A rebuild inserts each push once with
/// the outcome its events in the range decide (FoldedCte), and in the same statement applies the range's outcomes of
/// pushes requested in earlier ranges through the ordinary outcome rules: the same fold as page by page, by the rank
/// rule. The range's JSON is parsed once (r and x are referenced several times, so PostgreSQL materializes them).
/// </summary>
internal static class PushRange
{
    public const string Requests = """
        select seq, (data->>'push_id')::uuid as push_id, (data->>'device_id')::uuid as device_id, data->>'domain' as domain,
               (data->>'requested_at')::timestamptz as requested_at, (data->>'expires_at')::timestamptz as expires_at
        from push_events where seq > $1 and seq <= $2 and type = 'push_requested.v1'
        """;

    public const string Outcomes = """
        select seq, (data->>'push_id')::uuid as push_id,
               case type when 'push_delivered.v1' then 'delivered' when 'push_failed.v1' then 'failed'
                         when 'token_invalidated.v1' then 'invalidated' else 'rejected' end as kind,
               case type when 'push_delivered.v1' then 200 when 'push_failed.v1' then (data->>'status')::int
                         when 'token_invalidated.v1' then 410 else 400 end as status,
               data->>'reason' as reason,
               coalesce(data->>'delivered_at', data->>'failed_at', data->>'invalidated_at', data->>'rejected_at')::timestamptz as at,
               (data->>'latency_ms')::double precision as latency,
               coalesce((data->>'transient')::boolean, false) as transient
        from (select seq, type, data from push_events
              where seq > $1 and seq <= $2 and type in ('push_delivered.v1', 'push_failed.v1')
              union all
              select seq, type, data from events
              where seq > $1 and seq <= $2 and type in ('token_invalidated.v1', 'token_rejected.v1')) ev
        """;

    /// <summary>Within <see cref="FoldedCte"/>: the range's outcomes of pushes requested before it.</summary>
    public const string OutcomesOfEarlierPushes = "select * from x where x.push_id not in (select push_id from r)";

    /// <summary>CTEs r (the range's requests) and f (per request, the outcome event of the range that decides it).</summary>
    public const string FoldedCte = "with r as (" + Requests + "), x as (" + Outcomes + """
        ), fc as (
            select x.*, case when x.kind = 'failed' and x.at >= r.expires_at then 'expired'
                             when x.kind = 'failed' and x.transient then 'pending'
                             else x.kind end as outcome
            from x join r on r.push_id = x.push_id
        ), f as (
            select distinct on (push_id) * from fc
            order by push_id, monal_outcome_rank(outcome) desc,
                     case when monal_outcome_rank(outcome) = 0 then -seq else seq end
        )
        """;

    public static NpgsqlBatchCommand Command(string sql, long after, long upTo)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        cmd.Parameters.Add(new() { Value = after });
        cmd.Parameters.Add(new() { Value = upTo });
        return cmd;
    }
}
