-- The least an append of 100 events to 100 streams does (ideal-append.sh): take the versions from the streams rows,
-- insert the events. Each connection owns 1,250 streams, so connections never wait on each other's rows.
\set b random(0, 1149)
with s as (
    insert into streams as t (id, type, version, created_at, updated_at)
    select ('00000000-0000-0000-0000-' || lpad(to_hex(:client_id * 1250 + :b + i), 12, '0'))::uuid, 'device', 1, now(), now()
    from generate_series(0, 99) i
    order by 1
    on conflict (id) do update set version = t.version + 1, updated_at = excluded.updated_at
    returning t.id, t.version
)
insert into push_events (stream_id, version, type, data, "timestamp")
select id, version, 'PushRequested', '{"PushId":"0190a0b1-2c3d-7e4f-8a9b-0c1d2e3f4a5b","DeviceId":"0190a0b1-2c3d-7e4f-8a9b-0c1d2e3f4a5b","Domain":"example.org","RequestedAt":"2026-11-22T07:00:00+00:00","ExpiresAt":"2026-11-23T07:00:00+00:00"}'::jsonb, now() from s;
