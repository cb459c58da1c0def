-- Ended registrations take their tokens with them.
--
-- Tokens Apple declared dead stay dead (docs/architecture.md, "Dead tokens").
--
-- A stateless device (node = APNs token, docs/product.md) is created by the first publish to it, not by the
-- device. After Apple answers 410 Unregistered (or 400 BadDeviceToken / DeviceTokenNotForTopic) the hourly job
-- erases the device, and before this migration the next publish created it again and pushed to Apple again,
-- forever: the XMPP servers were never told item-not-found and never dropped the registration.
--
-- dead_tokens: one row per stateless device whose token Apple declared dead. It holds only the device id (a keyed
--          hash of push module and token, not reversible without the server key), Apple's timestamp, when we
--          learned it and Apple's reason: no token. monal_device_apply refuses to create a stateless device that has
--          a row here (MPG01: the publish is answered cancel/item-not-found). Rows are deleted by the invalid-token
--          job once older than Retention:PushLog (14 days at most), and by a GDPR erasure of that device.
--
-- monal_device_apply changes in two ways: (1) the dead_tokens check above; (2) a 410 always invalidates a stateless
-- device. "Unless the device registered again after Apple's timestamp" is about a registration by the device;
-- a stateless device's registered_at is only its first publish, which is usually later than Apple's timestamp
-- (Apple's timestamp is in the past: when the token stopped being valid), so the old rule kept dead tokens alive.

create table if not exists dead_tokens (
    device_id       uuid        primary key,
    apple_timestamp timestamptz,
    dead_at         timestamptz not null,
    reason          text
);

create index if not exists dead_tokens_dead_at_idx on dead_tokens (dead_at);

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
        if not found and p_check and coalesce(p_mode, 'registered') = 'stateless'
           and exists (select 1 from dead_tokens where device_id = p_id) then
            -- A stateless device is created by a publish, never by the device: Apple said its token is dead.
            raise exception 'token is dead' using errcode = 'MPG01', constraint = 'device_not_active';
        end if;
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

    if p_check then
        -- Delivered at commit only. DeviceDirectory caches in every process listen and evict the device.
        perform pg_notify('monal_devices', p_id::text);
    end if;
end $$;

-- A token replaced by re-registration becomes unreadable (docs/architecture.md, "Crypto-shredding").
--
-- data_keys gets generations. When a registered device renews with a different token, RegistrationHandler makes the
-- next generation of its key, encrypts the new token (and the secret) with it, appends RegistrationRenewed, then
-- deletes every generation older than the one the devices row's token is encrypted with: the old token, still in
-- the device's older events and in backups, can no longer be decrypted. Ciphertexts name their generation:
-- 'v1:<base64>' is generation 1, 'v2:<generation>:<base64>' any later one. A crash between the append and the
-- delete leaves an old generation behind; the hourly job deletes it (monal_retire_data_keys).
alter table data_keys add column if not exists generation integer not null default 1;
alter table data_keys drop constraint if exists data_keys_pkey;
alter table data_keys add constraint data_keys_pkey primary key (device_id, generation);

create or replace function monal_key_generation(ciphertext text) returns integer
language sql immutable as $$
    select case when ciphertext is null then null
                when ciphertext like 'v2:%' then split_part(ciphertext, ':', 2)::integer
                else 1 end
$$;

-- Deletes the key generations older than the one each device's current token is encrypted with (one device, or
-- every device when p_id is null). Returns the number of keys deleted.
create or replace function monal_retire_data_keys(p_id uuid) returns bigint
language sql as $$
    with retired as (
        delete from data_keys k using devices d
        where d.device_id = k.device_id and (p_id is null or k.device_id = p_id)
          and k.generation < monal_key_generation(d.encrypted_token)
        returning 1
    )
    select count(*) from retired
$$;
