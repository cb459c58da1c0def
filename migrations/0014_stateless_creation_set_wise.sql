-- New stateless devices are created set-wise (issue 16).
--
-- Every first publish to a token appends DeviceRegistered (stateless) and PushRequested in one append. The devices
-- projection folded such devices row by row through monal_devices_apply, one monal_device_apply call per event; with
-- many first publishes that loop was a third of the database's statement time (pg_stat_statements: 9 ms a call for
-- a group commit's ~30 new devices). DeviceProjection now sends the devices whose events in the batch are exactly
-- that (a stateless DeviceRegistered first, then only pushes) here, and their pushes to monal_devices_accept_pushes
-- after it. The outcome is the one monal_device_apply gives: a device that does not exist is refused when its token
-- is dead (MPG01, the whole append fails) and otherwise inserted without a NOTIFY (0010); a device that already
-- exists takes monal_device_apply's own path.

create or replace function monal_devices_create_stateless(
    p_id uuid[], p_at timestamptz[], p_module text[], p_token text[], p_domain text[]) returns void
language plpgsql as $$
declare
    r record;
begin
    perform 1
    from dead_tokens t
    where t.device_id = any(p_id) and not exists (select 1 from devices d where d.device_id = t.device_id)
    limit 1;
    if found then
        raise exception 'token is dead' using errcode = 'MPG01', constraint = 'device_not_active';
    end if;

    for r in
        with u as (
            select * from unnest(p_id, p_at, p_module, p_token, p_domain) as u(id, at, module, token, domain)
        ), ins as (
            insert into devices (device_id, mode, push_module, encrypted_token, secret_hash, registered_at, renewed_at, domains)
            select id, 'stateless', module, token, null, at, null, monal_add_domains('{}', array[domain])
            from u order by id
            on conflict (device_id) do nothing
            returning device_id
        )
        select u.* from u where u.id not in (select device_id from ins) order by u.id
    loop
        perform monal_device_apply('registered', r.id, r.at, 'stateless', r.module, r.token, null, r.domain, null, null, true);
    end loop;
end $$;
