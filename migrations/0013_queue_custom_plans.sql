-- The delivery queue's functions plan their statements afresh at every call (issue 16).
--
-- push_queue swings between empty and tens of thousands of rows within seconds. The append transaction that calls
-- these functions asks for generic plans (plan_cache_mode = force_generic_plan: EventStore.Append.cs), and PL/pgSQL
-- caches its statements' plans per connection, so a plan made while the queue was empty (a sequential scan that tests
-- every row against the whole id array) stays in use once the queue holds thousands of rows, until the next ANALYZE.
-- The function's own setting overrides the transaction's while it runs: each call is planned for its ids and the
-- table's size of the moment (index scans on push_queue_pkey), for well under a millisecond. The dispatcher's own
-- statements on the queue do the same (src/Delivery/Dispatching/QueueStatement.cs).

alter function monal_push_queue_finish(uuid[]) set plan_cache_mode = force_custom_plan;
alter function monal_push_queue_retry(uuid[], integer[], text[], timestamptz[], double precision, double precision)
    set plan_cache_mode = force_custom_plan;
