-- Exact per-day counts of push events, so the retention purge can drop a day partition and record how many events
-- it destroyed without reading them (docs/architecture.md, "Retention purge").
--
-- push_event_days: one row per (UTC day, backend). The append statement adds its push events to the row of
--          (the day of its timestamp, pg_backend_pid()); DeleteStreamAsync and the purge's boundary-day deletes
--          subtract theirs the same way. A backend runs one transaction at a time, so two concurrent transactions
--          never write the same row: no hot-row contention, and the count moves in the same transaction as the rows
--          it counts (exact, rollback included). The events of a day are sum(events) over its rows. The purge reads
--          that sum and deletes the day's rows in the transaction that drops the partition. A pid that is reused
--          later only adds to an existing row. No personal data: a date, a pid and a number.
-- Backfill: the days already stored are counted once here (backend 0). Forward-only; can run twice.

create table if not exists push_event_days (
    day     date    not null,
    backend integer not null,
    events  bigint  not null,
    primary key (day, backend)
) with (fillfactor = 50);

insert into push_event_days (day, backend, events)
select ("timestamp" at time zone 'UTC')::date, 0, count(*)
from push_events
group by 1
on conflict (day, backend) do nothing;
