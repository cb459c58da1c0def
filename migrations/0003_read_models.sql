-- Read models (src/Projections). Forward-only; every statement can run twice.
--
-- devices: the inline device projection, written in the append's own transaction (DeviceProjection.cs). It holds
--          exactly what the privacy policy allows per device: the (encrypted) token, registration and renewal time,
--          last successful push, last push error, the device UUID, the hashed secret, the XMPP domains that used it,
--          plus the lifecycle flags that decide whether a push may be accepted.
-- push_log: one row per push and its outcome (async). This is the "server log" the policy deletes after 14 days
--          (Retention:PushLog), hence the index on requested_at.
-- domain_usage: per-day, per-domain counters (async). No device identifier. domain_usage_pushes remembers each
--          push's domain and counted outcome so counts stay exact and idempotent; it is a push log too and is purged
--          with push_log.
-- projection_checkpoints: one row per async projection, advanced in the same transaction as its read rows.

create table if not exists devices (
    device_id         uuid        primary key,
    mode              text        not null check (mode in ('stateless', 'registered')),
    push_module       text        not null,
    encrypted_token   text,
    secret_hash       text,
    registered_at     timestamptz not null,
    renewed_at        timestamptz,
    last_push_at      timestamptz,
    last_error_at     timestamptz,
    last_error_reason text,
    invalidated_at    timestamptz,
    apple_timestamp   timestamptz,
    rejected_at       timestamptz,
    unregistered_at   timestamptz,
    domains           text[]      not null default '{}'
);

-- The set union of two domain lists, sorted, so the column does not depend on the order events were folded in.
create or replace function monal_add_domains(current_domains text[], added text[]) returns text[]
language sql immutable as $$
    select coalesce(array_agg(x order by x collate "C"), '{}')
    from (select distinct x from unnest(current_domains || added) as t(x) where x is not null) d
$$;

-- Folds one device event into its row, in stream order. Kinds: registered, renewed, unregistered, invalidated,
-- rejected, requested. With p_check, a push to a device that is missing, unregistered, invalidated or rejected
-- raises MPG01 (constraint device_not_active): the append then rolls back and the caller gets
-- AppendRejectedException, so a publish racing an erase or an invalidation is never acknowledged. With p_check off
-- (a rebuild replaying history) nothing is refused and nothing is notified.
create or replace function monal_device_apply(
    p_kind text, p_id uuid, p_at timestamptz, p_mode text, p_module text, p_token text, p_secret text,
    p_domain text, p_apple timestamptz, p_reason text, p_check boolean) returns void
language plpgsql as $$
declare
    d devices%rowtype;
begin
    select * into d from devices where device_id = p_id;

    if p_kind = 'requested' then
        if p_check and (not found or d.unregistered_at is not null or d.invalidated_at is not null
                        or d.rejected_at is not null) then
            raise exception 'device is not active' using errcode = 'MPG01', constraint = 'device_not_active';
        end if;
        if found and p_domain is not null and not (p_domain = any(d.domains)) then
            update devices set domains = monal_add_domains(domains, array[p_domain]) where device_id = p_id;
        end if;
        return;
    end if;

    if p_kind in ('registered', 'renewed') then
        if not found then
            insert into devices (device_id, mode, push_module, encrypted_token, secret_hash, registered_at, renewed_at, domains)
            values (p_id, coalesce(p_mode, 'registered'), p_module, p_token, p_secret, p_at,
                    case when p_kind = 'renewed' then p_at end, monal_add_domains('{}', array[p_domain]));
        elsif d.apple_timestamp is null or p_at > d.apple_timestamp then
            -- Policy: a token Apple declared invalid stays dead unless the device registered again after Apple's
            -- timestamp. This registration is later, so it re-activates the device with its (new) token.
            update devices set
                mode = coalesce(p_mode, mode),
                push_module = p_module,
                encrypted_token = p_token,
                secret_hash = case when p_kind = 'registered' then p_secret else secret_hash end,
                registered_at = case when p_kind = 'registered' then p_at else registered_at end,
                renewed_at = case when p_kind = 'renewed' then p_at else renewed_at end,
                invalidated_at = null, apple_timestamp = null, rejected_at = null, unregistered_at = null,
                domains = monal_add_domains(domains, array[p_domain])
            where device_id = p_id;
        else
            -- Registered before Apple's timestamp: the token it carries is the dead one. Only the domain is learned.
            update devices set domains = monal_add_domains(domains, array[p_domain]) where device_id = p_id;
        end if;
    elsif not found then
        return;
    elsif p_kind = 'unregistered' then
        update devices set unregistered_at = coalesce(unregistered_at, p_at) where device_id = p_id;
    elsif p_kind in ('invalidated', 'rejected') then
        update devices set
            last_error_at = case when (p_at, coalesce(p_reason, '') collate "C")
                > (coalesce(last_error_at, '-infinity'), coalesce(last_error_reason, '') collate "C")
                then p_at else last_error_at end,
            last_error_reason = case when (p_at, coalesce(p_reason, '') collate "C")
                > (coalesce(last_error_at, '-infinity'), coalesce(last_error_reason, '') collate "C")
                then p_reason else last_error_reason end
        where device_id = p_id;
        if p_kind = 'rejected' then
            update devices set rejected_at = coalesce(rejected_at, p_at) where device_id = p_id;
        elsif greatest(d.registered_at, d.renewed_at) <= p_apple then
            -- Invalid since Apple's timestamp and not registered again since: the token is deleted (policy).
            update devices set
                invalidated_at = coalesce(invalidated_at, p_at),
                apple_timestamp = greatest(apple_timestamp, p_apple),
                encrypted_token = null
            where device_id = p_id;
        end if;
    else
        raise exception 'unknown device event kind %', p_kind;
    end if;

    if p_check then
        -- Delivered at commit only. DeviceDirectory caches in every process listen and evict the device.
        perform pg_notify('monal_devices', p_id::text);
    end if;
end $$;

-- Folds a batch of device events in the order given (DeviceProjection sorts them by device, keeping stream order).
create or replace function monal_devices_apply(
    p_kind text[], p_id uuid[], p_at timestamptz[], p_mode text[], p_module text[], p_token text[], p_secret text[],
    p_domain text[], p_apple timestamptz[], p_reason text[]) returns void
language plpgsql as $$
begin
    for i in 1 .. coalesce(array_length(p_kind, 1), 0) loop
        perform monal_device_apply(p_kind[i], p_id[i], p_at[i], p_mode[i], p_module[i], p_token[i], p_secret[i],
                                   p_domain[i], p_apple[i], p_reason[i], true);
    end loop;
end $$;

-- The hot path: pushes to devices with no lifecycle event in the same batch. Refuses the whole append (MPG01) when
-- any of the devices is not active; otherwise learns new domains (rows are rarely written: only for a new domain).
create or replace function monal_devices_accept_pushes(p_id uuid[], p_domain text[]) returns void
language plpgsql as $$
begin
    perform 1
    from unnest(p_id) as u(id) left join devices d on d.device_id = u.id
    where d.device_id is null or d.unregistered_at is not null or d.invalidated_at is not null or d.rejected_at is not null
    limit 1;
    if found then
        raise exception 'device is not active' using errcode = 'MPG01', constraint = 'device_not_active';
    end if;

    update devices d set domains = monal_add_domains(d.domains, n.domains)
    from (select u.id, array_agg(distinct u.domain) as domains
          from unnest(p_id, p_domain) as u(id, domain) where u.domain is not null group by u.id) n
    where d.device_id = n.id and not (n.domains <@ d.domains);
end $$;

-- Rebuilds the device rows from the stored history (ProjectionRebuilder). The caller holds an EXCLUSIVE lock on
-- devices, so appends wait (their inline statements queue behind it) and apply on top of the rebuilt rows.
create or replace function monal_devices_rebuild() returns bigint
language plpgsql as $$
declare
    r record;
    n bigint := 0;
begin
    delete from devices;
    for r in
        select stream_id, type, data from events
        where type in ('device_registered.v1', 'registration_renewed.v1', 'device_unregistered.v1',
                       'token_invalidated.v1', 'token_rejected.v1')
        order by stream_id, seq
    loop
        perform monal_device_apply(
            case r.type when 'device_registered.v1' then 'registered' when 'registration_renewed.v1' then 'renewed'
                        when 'device_unregistered.v1' then 'unregistered' when 'token_invalidated.v1' then 'invalidated'
                        else 'rejected' end,
            (r.data->>'device_id')::uuid,
            coalesce(r.data->>'registered_at', r.data->>'renewed_at', r.data->>'unregistered_at',
                     r.data->>'invalidated_at', r.data->>'rejected_at')::timestamptz,
            lower(r.data->>'mode'), r.data->>'push_module', r.data->>'encrypted_token', r.data->>'secret_hash',
            r.data->>'domain', (r.data->>'apple_timestamp')::timestamptz, r.data->>'reason', false);
        n := n + 1;
    end loop;

    -- Push events only add commutative facts (domains, latest success, latest error), folded set-wise.
    update devices d set
        domains = monal_add_domains(d.domains, a.domains),
        last_push_at = greatest(d.last_push_at, a.delivered_at),
        last_error_at = case when a.failed_at is not null and (a.failed_at, a.reason collate "C")
            > (coalesce(d.last_error_at, '-infinity'), coalesce(d.last_error_reason, '') collate "C")
            then a.failed_at else d.last_error_at end,
        last_error_reason = case when a.failed_at is not null and (a.failed_at, a.reason collate "C")
            > (coalesce(d.last_error_at, '-infinity'), coalesce(d.last_error_reason, '') collate "C")
            then a.reason else d.last_error_reason end
    from (
        select (data->>'device_id')::uuid as id,
               coalesce(array_agg(distinct data->>'domain') filter (where type = 'push_requested.v1'), '{}') as domains,
               max((data->>'delivered_at')::timestamptz) filter (where type = 'push_delivered.v1') as delivered_at,
               (array_agg((data->>'failed_at')::timestamptz
                   order by (data->>'failed_at')::timestamptz desc,
                            coalesce(data->>'reason', data->>'status') collate "C" desc)
                   filter (where type = 'push_failed.v1'))[1] as failed_at,
               (array_agg(coalesce(data->>'reason', data->>'status')
                   order by (data->>'failed_at')::timestamptz desc,
                            coalesce(data->>'reason', data->>'status') collate "C" desc)
                   filter (where type = 'push_failed.v1'))[1] as reason
        from push_events group by 1
    ) a
    where d.device_id = a.id;

    perform pg_notify('monal_devices', '*');
    return n + (select count(*) from push_events);
end $$;

create table if not exists push_log (
    push_id      uuid        primary key,
    device_id    uuid        not null,
    domain       text        not null,
    requested_at timestamptz not null,
    expires_at   timestamptz not null,
    outcome      text        not null default 'pending'
                 check (outcome in ('pending', 'delivered', 'failed', 'invalidated', 'rejected', 'expired')),
    status       integer,
    reason       text,
    outcome_at   timestamptz,
    latency_ms   double precision
);

create index if not exists push_log_requested_at_idx on push_log (requested_at);
create index if not exists push_log_device_idx on push_log (device_id);

-- How final an outcome is. An outcome event replaces a row's outcome only when it is more final; among equally
-- final events the first wins, except that transient failures (rank 0, still pending) keep the latest status.
-- DeliveredAt/TokenInvalidated/TokenRejected (2) refine a failure (1), e.g. a 410 recorded first as a failure.
create or replace function monal_outcome_rank(outcome text) returns integer
language sql immutable as $$
    select case outcome when 'pending' then 0 when 'failed' then 1 when 'expired' then 1 else 2 end
$$;

create table if not exists domain_usage (
    day         date   not null,
    domain      text   not null,
    pushes      bigint not null default 0,
    delivered   bigint not null default 0,
    failed      bigint not null default 0,
    invalidated bigint not null default 0,
    rejected    bigint not null default 0,
    primary key (day, domain)
);

create table if not exists domain_usage_pushes (
    push_id      uuid        primary key,
    day          date        not null,
    domain       text        not null,
    requested_at timestamptz not null,
    expires_at   timestamptz not null,
    outcome      text        not null default 'pending'
);

create index if not exists domain_usage_pushes_requested_at_idx on domain_usage_pushes (requested_at);

create table if not exists projection_checkpoints (
    name          text        primary key,
    position      bigint      not null default 0,
    updated_at    timestamptz not null default now(),
    last_error    text,
    last_error_at timestamptz
);

-- First statement of every page a projection applies: moves its checkpoint from p_expected to p_position in the
-- page's transaction (the row lock serializes two writers), refuses with MPC01 when another writer moved it, and
-- with MPC02 while a rebuild holds the projection's advisory lock (ProjectionRebuilder takes it exclusively).
create or replace function monal_checkpoint_advance(p_name text, p_expected bigint, p_position bigint) returns void
language plpgsql as $$
begin
    if not pg_try_advisory_xact_lock_shared(hashtext('monal_projection:' || p_name)) then
        raise exception 'projection % is being rebuilt', p_name using errcode = 'MPC02';
    end if;
    update projection_checkpoints set position = p_position, updated_at = now()
    where name = p_name and position = p_expected;
    if not found then
        raise exception 'checkpoint of % is not at %', p_name, p_expected using errcode = 'MPC01';
    end if;
end $$;
