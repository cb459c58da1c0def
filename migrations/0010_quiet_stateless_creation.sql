-- A new stateless device is created without a NOTIFY (issue 16).
--
-- PostgreSQL takes one database-wide lock for NOTIFY at pre-commit and holds it until the commit's WAL flush has
-- returned, so transactions that notify commit one after another, each with a flush of its own. Every first publish
-- to a token creates its device inside the append's group commit, and monal_device_apply announced it on
-- 'monal_devices': with many first publishes the group commits queued on that lock (pg_stat_activity: Lock:object)
-- instead of sharing flushes. The announcement is there so that DeviceDirectory caches evict what they hold of the
-- device; for a device that did not exist, they hold nothing: DeviceDirectory keeps only devices it found (an
-- unknown device is asked of the database every time), so a new device needs no eviction. Every other lifecycle
-- change (a registration of a registered device, renewal, unregistration, invalidation, rejection, erasure) still
-- announces itself. Only that one branch differs from 0007's monal_device_apply.

create or replace function monal_device_apply(
    p_kind text, p_id uuid, p_at timestamptz, p_mode text, p_module text, p_token text, p_secret text,
    p_domain text, p_apple timestamptz, p_reason text, p_check boolean) returns void
language plpgsql as $$
declare
    d devices%rowtype;
    v_announce boolean := p_check;
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
        if not found and p_check and coalesce(p_mode, 'registered') = 'stateless'
           and exists (select 1 from dead_tokens where device_id = p_id) then
            -- A stateless device is created by a publish, never by the device: Apple said its token is dead.
            raise exception 'token is dead' using errcode = 'MPG01', constraint = 'device_not_active';
        end if;
        if not found then
            insert into devices (device_id, mode, push_module, encrypted_token, secret_hash, registered_at, renewed_at, domains)
            values (p_id, coalesce(p_mode, 'registered'), p_module, p_token, p_secret, p_at,
                    case when p_kind = 'renewed' then p_at end, monal_add_domains('{}', array[p_domain]));
            -- A new stateless device: no cache holds it (they keep found devices only), so nothing to announce.
            v_announce := v_announce and coalesce(p_mode, 'registered') <> 'stateless';
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
        if p_check and d.mode = 'stateless' then
            -- Remembered after the device is erased, so a publish cannot create it again (see the header).
            insert into dead_tokens (device_id, apple_timestamp, dead_at, reason)
            values (p_id, p_apple, p_at, p_reason)
            on conflict (device_id) do nothing;
        end if;
        if p_kind = 'rejected' then
            update devices set rejected_at = coalesce(rejected_at, p_at) where device_id = p_id;
        elsif d.mode = 'stateless' or greatest(d.registered_at, d.renewed_at) <= p_apple then
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

    if v_announce then
        -- Delivered at commit only. DeviceDirectory caches in every process listen and evict the device.
        perform pg_notify('monal_devices', p_id::text);
    end if;
end $$;
