-- The delivery queue (src/Delivery/Dispatching): the outbox of pushes still to send, kept by the inline
-- DeliveryQueueProjection in the append's own transaction, like Wolverine's durable envelopes. A row appears with
-- PushRequested and leaves with the push's final outcome; a transient failure moves next_attempt_at.
--
-- Claiming: a dispatcher owns a row while claimed_by is its node id and claimed_until lies ahead. It takes due rows
-- with FOR UPDATE SKIP LOCKED, renews its claims while it holds them and clears them on a graceful stop; a killed
-- process's rows become due again once claimed_until has passed. Only the claim holder sends, so two nodes never
-- send one push at the same time. Rows hold no personal data: ids, times, counters and Apple's status/reason.
-- Forward-only; every statement can run twice.

create table if not exists push_queue (
    push_id         uuid        primary key,
    device_id       uuid        not null,
    requested_at    timestamptz not null,
    not_before      timestamptz not null,
    expires_at      timestamptz not null,
    attempts        integer     not null default 0,
    next_attempt_at timestamptz not null,
    claimed_by      text,
    claimed_until   timestamptz,
    last_status     integer,
    last_reason     text
);

-- The poller's scan: due rows in the order they became due.
create index if not exists push_queue_next_attempt_idx on push_queue (next_attempt_at);
-- Stream deletion (erasure) and lease renewal.
create index if not exists push_queue_device_idx on push_queue (device_id);
create index if not exists push_queue_claimed_by_idx on push_queue (claimed_by) where claimed_by is not null;

-- A final outcome removes its pushes. Each push has exactly one final outcome: when a row is already gone (another
-- node recorded the outcome first, or the device's stream was deleted meanwhile) the append is refused with MPG01,
-- so a late duplicate never reaches the ledger and an erased stream is never re-created by an outcome.
-- Rows are locked in push-id order so that two batches never deadlock.
create or replace function monal_push_queue_finish(p_ids uuid[]) returns void
language plpgsql as $$
declare
    n integer;
begin
    perform 1 from push_queue where push_id = any(p_ids) order by push_id for update;
    delete from push_queue where push_id = any(p_ids);
    get diagnostics n = row_count;
    if n < cardinality(p_ids) then
        raise exception 'push is not queued' using errcode = 'MPG01', constraint = 'push_not_queued';
    end if;
end $$;

-- A transient failure: count the attempt, remember Apple's answer, schedule the next attempt with exponential
-- backoff and full jitter in [delay/2, delay] (never past the push's expiry, when the dispatcher records it as
-- expired), and hand the row back so any node may take it when it is due.
create or replace function monal_push_queue_retry(
    p_ids uuid[], p_status integer[], p_reason text[], p_failed_at timestamptz[], p_base_ms double precision,
    p_max_ms double precision) returns void
language plpgsql as $$
declare
    n integer;
begin
    perform 1 from push_queue where push_id = any(p_ids) order by push_id for update;
    update push_queue q set
        attempts = q.attempts + 1,
        last_status = f.status,
        last_reason = f.reason,
        next_attempt_at = least(q.expires_at, f.failed_at
            + least(p_max_ms, p_base_ms * power(2, least(q.attempts, 30))) * (0.5 + random() * 0.5) * interval '1 millisecond'),
        claimed_by = null,
        claimed_until = null
    from unnest(p_ids, p_status, p_reason, p_failed_at) as f(push_id, status, reason, failed_at)
    where q.push_id = f.push_id;
    get diagnostics n = row_count;
    if n < cardinality(p_ids) then
        raise exception 'push is not queued' using errcode = 'MPG01', constraint = 'push_not_queued';
    end if;
end $$;
