-- A day's push_events partition is made as a table of its own and then attached, instead of CREATE TABLE ...
-- PARTITION OF, which takes an ACCESS EXCLUSIVE lock on push_events: the first push of a UTC day then waited for every
-- transaction that reads or writes push_events (the projection daemon's range, an export, a report), and every other
-- append of the node queued behind that lock meanwhile. ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on push_events,
-- which neither appends (ROW EXCLUSIVE) nor reads (ACCESS SHARE) conflict with; the new table is empty, so checking it
-- against the day's bounds costs nothing. Still safe when several processes race to create the same day: the losers
-- find the table, or the partition, already there.

create or replace function monal_ensure_push_partition(day date) returns text
language plpgsql as $$
declare
    part text := format('push_events_%s', to_char(day, 'YYYYMMDD'));
begin
    if to_regclass(part) is null
       or not exists (select 1 from pg_inherits where inhrelid = to_regclass(part) and inhparent = 'push_events'::regclass) then
        begin
            execute format('create table if not exists %I (like push_events including all)', part);
            execute format('alter table push_events attach partition %I for values from (%L) to (%L)',
                part, (day::timestamp at time zone 'UTC'), ((day + 1)::timestamp at time zone 'UTC'));
        exception when duplicate_table or unique_violation or wrong_object_type then
            -- Another process created or attached it first.
            null;
        end;
    end if;
    return part;
end $$;
