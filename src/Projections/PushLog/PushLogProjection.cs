using Monal.Push.Ledger.EventStore;
using Monal.Push.Projections.Daemon;
using Monal.Push.Projections.DomainUsage;
using Npgsql;

namespace Monal.Push.Projections.PushLog;

/// <summary>
/// push_log: one row per push and its outcome, the "server log" that Retention:PushLog deletes after 14 days (by
/// requested_at). Idempotent: a request is inserted once, and an outcome only ever makes a row more final. The same
/// statements fold the per-day, per-domain counters of domain_usage from what they changed in push_log
/// (<see cref="DomainUsageCounters"/>), so one projection, one checkpoint and one statement per step keep both.
/// </summary>
internal sealed class PushLogProjection() : PushFoldProjection(RequestsSql, OutcomesSql, RangeSql), IStreamDeletionHook
{
    // A request is only recorded while its device's stream still exists. FOR KEY SHARE does not block appends
    // (they take a weaker lock on the streams row) but does order us against an erase (FOR UPDATE): either the
    // erase waits and then deletes what we inserted, or we wait and then see the stream gone.
    private static readonly string RequestsSql = """
        with u as (
            select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]::timestamptz[], $5::text[]::timestamptz[])
                as u(push_id, device_id, domain, requested_at, expires_at)
        ), live as (
            select s.id from streams s where s.id in (select device_id from u) for key share
        ), ins as (
            insert into push_log (push_id, device_id, domain, requested_at, expires_at)
            select push_id, device_id, domain, requested_at, expires_at from u
            where device_id in (select id from live)
            on conflict (push_id) do nothing
            returning requested_at, domain, outcome
        )
        """ + DomainUsageCounters.AddChanges(inserted: "ins");

    // Returns what it changed for the domain counters: the push's day and domain, its new outcome and the old one.
    private const string OutcomesUpdate = """
        update push_log p set
            outcome = o.outcome, status = o.status, reason = o.reason, outcome_at = o.at,
            latency_ms = coalesce(o.latency, (extract(epoch from o.at - o.requested_at) * 1000)::double precision)
        from o
        where p.push_id = o.push_id
          and (monal_outcome_rank(o.outcome) > monal_outcome_rank(p.outcome)
               or (monal_outcome_rank(o.outcome) = 0 and monal_outcome_rank(p.outcome) = 0))
        returning o.requested_at, o.domain, o.outcome, o.old
        """;

    private const string OutcomeColumns = "p.requested_at, p.domain";

    private static readonly string OutcomesSql = PushPage.OutcomesCte("push_log", OutcomeColumns) + """
        , upd as (
        """ + OutcomesUpdate + """
        )
        """ + DomainUsageCounters.AddChanges(updated: "upd");

    private static readonly string RangeSql = PushRange.FoldedCte
        + PushPage.OutcomesCte("push_log", OutcomeColumns, PushRange.OutcomesOfEarlierPushes, leading: ",") + """
        , live as (
            select s.id from streams s where s.id in (select device_id from r) for key share
        ), ins as (
            insert into push_log (push_id, device_id, domain, requested_at, expires_at, outcome, status, reason, outcome_at, latency_ms)
            select r.push_id, r.device_id, r.domain, r.requested_at, r.expires_at, coalesce(f.outcome, 'pending'), f.status,
                   f.reason, f.at,
                   case when f.push_id is not null
                        then coalesce(f.latency, (extract(epoch from f.at - r.requested_at) * 1000)::double precision) end
            from r left join f on f.push_id = r.push_id
            where r.device_id in (select id from live)
            on conflict (push_id) do nothing
            returning requested_at, domain, outcome
        ), upd as (
        """ + OutcomesUpdate + """
        )
        """ + DomainUsageCounters.AddChanges(inserted: "ins", updated: "upd");

    public override string Name => "push_log";

    public override IReadOnlyList<string> Tables { get; } = ["push_log", "domain_usage"];

    public void OnDelete(NpgsqlBatch batch, Guid streamId)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var cmd = new NpgsqlBatchCommand("delete from push_log where device_id = $1");
        cmd.Parameters.Add(new() { Value = streamId });
        batch.BatchCommands.Add(cmd);
    }
}
