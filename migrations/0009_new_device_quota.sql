-- The new-device quota (issue 18, docs/architecture.md "Abuse resistance").
--
-- A publish to a token nobody used before creates a device (a data key, a DeviceRegistered, a stream), and so does a
-- v1 registration of a new node. One sender (an XMPP domain, or an HTTP client's network) may create at most a
-- bucket of new devices, refilled at a steady rate: a token bucket, kept here so that it survives a restart and is
-- shared by every process on this database.
--
-- new_device_quota: one row per sender whose bucket is not full. subject is 'xmpp:<domain>' (a server's domain is
--          not personal data) or 'http:<keyed hash>' (an HTTP client's address is: only a short keyed hash of its
--          network is kept, never the address). tokens is what was left at updated_at; full_at is when the bucket
--          is full again, after which the row says nothing the absence of a row would not, and is deleted
--          (Limits options are validated so that a bucket fills within 14 days: no count outlives the policy).
--
-- monal_take_new_devices(subject, want, capacity, per_second, now) refills the bucket to now, takes up to want
-- tokens and returns how many it took (0: over quota). The row lock serializes takers of one subject only; a
-- process takes tokens in small chunks and spends them locally, so this runs once per chunk, not per device.

create table if not exists new_device_quota (
    subject    text             primary key,
    tokens     double precision not null,
    updated_at timestamptz      not null,
    full_at    timestamptz      not null
);

create index if not exists new_device_quota_full_at_idx on new_device_quota (full_at);

create or replace function monal_take_new_devices(
    p_subject text, p_want integer, p_capacity double precision, p_per_second double precision, p_now timestamptz)
    returns integer
language plpgsql as $$
declare
    q new_device_quota%rowtype;
    v_tokens double precision;
    v_taken integer;
    v_at timestamptz;
begin
    insert into new_device_quota (subject, tokens, updated_at, full_at)
    values (p_subject, p_capacity, p_now, p_now)
    on conflict (subject) do nothing;

    select * into q from new_device_quota where subject = p_subject for update;
    -- Clocks of several processes differ a little: time never runs backwards for a bucket.
    v_at := greatest(q.updated_at, p_now);
    v_tokens := least(p_capacity, q.tokens + extract(epoch from (v_at - q.updated_at)) * p_per_second);
    v_taken := greatest(0, least(p_want, floor(v_tokens)::integer));
    v_tokens := v_tokens - v_taken;
    update new_device_quota
       set tokens = v_tokens,
           updated_at = v_at,
           full_at = v_at + make_interval(secs => (p_capacity - v_tokens) / p_per_second)
     where subject = p_subject;
    return v_taken;
end
$$;
