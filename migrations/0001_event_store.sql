-- The event store (docs/architecture.md explains the split).
-- streams: one row per stream; its version row is the single authority for stream versions, and its row lock
--          serializes appends to one stream.
-- events: registration, token and system events. Unpartitioned, so UNIQUE (stream_id, version) is enforced.
-- push_events: PushRequested and its outcomes, partitioned by UTC day on "timestamp", so the 14-day purge drops
--          whole partitions instead of scanning. PostgreSQL cannot enforce UNIQUE (stream_id, version) across
--          partitions; the streams row (updated in the same statement) guarantees it instead.
-- Both tables draw their global position from one sequence. A position is taken only after the transaction has
-- an xid (see EventStore.Append.cs), which is what lets readers prove a gap dead (EventFeed.cs).

create sequence if not exists event_seq as bigint;

create table if not exists streams (
    id          uuid        primary key,
    type        text        not null,
    version     bigint      not null check (version > 0),
    created_at  timestamptz not null,
    updated_at  timestamptz not null
);

create table if not exists events (
    seq         bigint      primary key default nextval('event_seq'),
    stream_id   uuid        not null,
    version     bigint      not null,
    type        text        not null,
    data        jsonb       not null,
    metadata    jsonb,
    "timestamp" timestamptz not null,
    constraint events_stream_version_key unique (stream_id, version)
);

create index if not exists events_type_timestamp_idx on events (type, "timestamp");

create table if not exists push_events (
    seq         bigint      not null default nextval('event_seq'),
    stream_id   uuid        not null,
    version     bigint      not null,
    type        text        not null,
    data        jsonb       not null,
    metadata    jsonb,
    "timestamp" timestamptz not null,
    primary key (seq, "timestamp")
) partition by range ("timestamp");

create index if not exists push_events_stream_idx on push_events (stream_id, version);

-- Creates the partition of one UTC day if it is missing; safe when several processes race to create it.
create or replace function monal_ensure_push_partition(day date) returns text
language plpgsql as $$
declare
    part text := format('push_events_%s', to_char(day, 'YYYYMMDD'));
begin
    if to_regclass(part) is null then
        begin
            execute format(
                'create table %I partition of push_events for values from (%L) to (%L)',
                part, (day::timestamp at time zone 'UTC'), ((day + 1)::timestamp at time zone 'UTC'));
        exception when duplicate_table then
            null;
        end;
    end if;
    return part;
end $$;

-- Raised by the append statement when a stream is not at the version the caller expected.
create or replace function monal_version_conflict(stream uuid, expected bigint, actual bigint) returns bigint
language plpgsql as $$
begin
    raise exception 'stream % is at version %, expected %', stream, actual, expected
        using errcode = 'MPV01', constraint = 'streams_expected_version';
end $$;
