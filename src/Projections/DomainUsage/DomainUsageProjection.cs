using Monal.Push.Ledger.EventStore;
using Monal.Push.Projections.Daemon;
using Monal.Push.Projections.PushLog;
using Npgsql;

namespace Monal.Push.Projections.DomainUsage;

/// <summary>
/// domain_usage: per UTC day of the request and per XMPP domain, how many pushes were requested and how they ended
/// (expired counts as failed). No device identifier. domain_usage_pushes remembers each push's domain and the outcome
/// already counted, which makes the counters exact when an outcome is refined (failed, then invalidated) and
/// idempotent when events are applied twice. That table is itself a push log and must be purged with push_log.
/// The counters are purged with it too (PushLogRetention): they name no device, but on a domain with one user a
/// day's count is that person's pushes, so none outlives Retention:PushLog.
/// </summary>
internal sealed class DomainUsageProjection() : PushFoldProjection(RequestsSql, OutcomesSql, RangeSql)
{
    private const string RequestsSql = """
        with u as (
            select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]::timestamptz[], $5::text[]::timestamptz[])
                as u(push_id, device_id, domain, requested_at, expires_at)
        ), i as (
            insert into domain_usage_pushes (push_id, day, domain, requested_at, expires_at)
            select push_id, (requested_at at time zone 'UTC')::date, domain, requested_at, expires_at from u
            on conflict (push_id) do nothing
            returning day, domain
        )
        insert into domain_usage as t (day, domain, pushes)
        select day, domain, count(*) from i group by day, domain
        on conflict (day, domain) do update set pushes = t.pushes + excluded.pushes
        """;

    // The counters of a delta (rows day, domain, outcome, n), added to what domain_usage already holds; a replayed
    // range also adds the pushes it inserted.
    private static string Tally(bool pushes) => """
        coalesce(sum(n) filter (where outcome = 'delivered'), 0),
        coalesce(sum(n) filter (where outcome in ('failed', 'expired')), 0),
        coalesce(sum(n) filter (where outcome = 'invalidated'), 0),
        coalesce(sum(n) filter (where outcome = 'rejected'), 0)
        from delta group by day, domain
        on conflict (day, domain) do update set
        """ + (pushes ? " pushes = t.pushes + excluded.pushes," : "") + """

            delivered = t.delivered + excluded.delivered,
            failed = t.failed + excluded.failed,
            invalidated = t.invalidated + excluded.invalidated,
            rejected = t.rejected + excluded.rejected
        """;

    private static readonly string OutcomesTail = """
        , w as (
            select * from o where monal_outcome_rank(outcome) > monal_outcome_rank(old)
        ), upd as (
            update domain_usage_pushes p set outcome = w.outcome from w where p.push_id = w.push_id
        ), delta as (
            select day, domain, outcome, 1 as n from w
            union all
            select day, domain, old, -1 from w where old <> 'pending'
        )
        insert into domain_usage as t (day, domain, delivered, failed, invalidated, rejected)
        select day, domain,
        """ + Tally(pushes: false);

    private static readonly string OutcomesSql = PushPage.OutcomesCte("domain_usage_pushes", "p.day, p.domain") + OutcomesTail;

    private static readonly string RangeSql = PushRange.FoldedCte
        + PushPage.OutcomesCte("domain_usage_pushes", "p.day, p.domain", PushRange.OutcomesOfEarlierPushes, leading: ",") + """
        , i as (
            insert into domain_usage_pushes (push_id, day, domain, requested_at, expires_at, outcome)
            select r.push_id, (r.requested_at at time zone 'UTC')::date, r.domain, r.requested_at, r.expires_at,
                   coalesce(f.outcome, 'pending')
            from r left join f on f.push_id = r.push_id
            on conflict (push_id) do nothing
            returning day, domain, outcome
        ), w as (
            select * from o where monal_outcome_rank(outcome) > monal_outcome_rank(old)
        ), upd as (
            update domain_usage_pushes p set outcome = w.outcome from w where p.push_id = w.push_id
        ), delta as (
            select day, domain, 1 as pushes, outcome, 1 as n from i
            union all
            select day, domain, 0, outcome, 1 from w
            union all
            select day, domain, 0, old, -1 from w where old <> 'pending'
        )
        insert into domain_usage as t (day, domain, pushes, delivered, failed, invalidated, rejected)
        select day, domain, sum(pushes),
        """ + Tally(pushes: true);

    public override string Name => "domain_usage";

    public override IReadOnlyList<string> Tables { get; } = ["domain_usage", "domain_usage_pushes"];
}
