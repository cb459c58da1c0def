-- domain_usage folded by the push log's own statements; domain_usage_pushes dropped (issue 16).
--
-- Until now domain_usage was a projection of its own, with its own checkpoint and its own per-push table
-- (domain_usage_pushes: each push's day, domain and counted outcome), so every push was inserted into two tables
-- and, when its outcome came, updated in two: half of the projection daemon's work, and a second copy of the push log
-- to purge and audit. From this version the push_log projection adds to the counters what its statements changed in
-- push_log (a push inserted, an outcome made more final), in the same statements and transaction.
--
-- The counters are recomputed here from what the push_log projection has applied, so that it can go on from its own
-- checkpoint without counting anything twice or missing anything, whichever of the two projections was ahead:
-- every push in push_log by its outcome there, plus the pushes only domain_usage_pushes knew that the push log will
-- not insert later (their device was erased before the push log got to them: requested at or before its checkpoint).
-- Days whose counters the retention job had already deleted (older than the oldest day still counted) stay deleted.

do $$
declare
    applied bigint := coalesce((select position from projection_checkpoints where name = 'push_log'), 0);
    oldest date := (select min(day) from domain_usage);
begin
    create temporary table counted on commit drop as
        select (l.requested_at at time zone 'UTC')::date as day, l.domain, l.outcome
        from push_log l
        union all
        select d.day, d.domain, d.outcome
        from domain_usage_pushes d
        where not exists (select 1 from push_log l where l.push_id = d.push_id)
          and not exists (select 1 from push_events e
                          where e.seq > applied and e.type = 'push_requested.v1' and (e.data->>'push_id')::uuid = d.push_id)
          and not exists (select 1 from events e
                          where e.seq > applied and e.type = 'push_requested.v1' and (e.data->>'push_id')::uuid = d.push_id);

    delete from domain_usage;
    insert into domain_usage (day, domain, pushes, delivered, failed, invalidated, rejected)
    select day, domain, count(*),
           count(*) filter (where outcome = 'delivered'),
           count(*) filter (where outcome in ('failed', 'expired')),
           count(*) filter (where outcome = 'invalidated'),
           count(*) filter (where outcome = 'rejected')
    from counted
    where oldest is null or day >= oldest
    group by day, domain;
end
$$;

drop table domain_usage_pushes;
delete from projection_checkpoints where name = 'domain_usage';
