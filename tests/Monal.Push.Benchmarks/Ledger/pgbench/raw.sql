-- 100 event rows into a table with a primary key only (ideal-append.sh).
insert into raw (stream_id, version, type, data, "timestamp")
select ('00000000-0000-0000-0000-' || lpad(to_hex(:client_id * 1250 + i), 12, '0'))::uuid, 1, 'PushRequested',
       '{"PushId":"0190a0b1-2c3d-7e4f-8a9b-0c1d2e3f4a5b","DeviceId":"0190a0b1-2c3d-7e4f-8a9b-0c1d2e3f4a5b","Domain":"example.org","RequestedAt":"2026-11-22T07:00:00+00:00","ExpiresAt":"2026-11-23T07:00:00+00:00"}'::jsonb, now()
from generate_series(0, 99) i;
