namespace Monal.Push.Projections.DomainUsage;

/// <summary>
/// domain_usage: per UTC day of the request and per XMPP domain, how many pushes were requested and how they ended
/// (expired counts as failed). No device identifier. The counters are folded by the push log's own statements
/// (<see cref="PushLog.PushLogProjection"/>), from what each statement changed in push_log: a push it inserted
/// counts once, and an outcome that made a row more final moves one count from the old outcome to the new. So the
/// counters follow push_log exactly, idempotently (an insert that conflicts and an outcome that ranks no higher change
/// nothing), and no second per-push table is kept for them. They are purged with push_log (PushLogRetention): they name
/// no device, but on a domain with one user a day's count is that person's pushes, so none outlives Retention:PushLog.
/// </summary>
internal static class DomainUsageCounters
{
    /// <summary>
    /// The statement's tail: adds the rows of CTE <c>delta</c> (requested_at, domain, pushes, outcome, n) to domain_usage.
    /// A row with outcome 'pending' changes only the pushes counter.
    /// </summary>
    public const string AddDelta = """
        insert into domain_usage as t (day, domain, pushes, delivered, failed, invalidated, rejected)
        select (requested_at at time zone 'UTC')::date as day, domain, sum(pushes),
               coalesce(sum(n) filter (where outcome = 'delivered'), 0),
               coalesce(sum(n) filter (where outcome in ('failed', 'expired')), 0),
               coalesce(sum(n) filter (where outcome = 'invalidated'), 0),
               coalesce(sum(n) filter (where outcome = 'rejected'), 0)
        from delta group by 1, 2
        on conflict (day, domain) do update set
            pushes = t.pushes + excluded.pushes,
            delivered = t.delivered + excluded.delivered,
            failed = t.failed + excluded.failed,
            invalidated = t.invalidated + excluded.invalidated,
            rejected = t.rejected + excluded.rejected
        """;

    /// <summary>CTE rows of <c>delta</c> for the pushes an insert returned (requested_at, domain, outcome).</summary>
    public static string Inserted(string cte) => $"select requested_at, domain, 1 as pushes, outcome, 1 as n from {cte}";

    /// <summary>
    /// CTE rows of <c>delta</c> for the outcomes an update returned (requested_at, domain, outcome, old): one count
    /// moves from the old outcome to the new (a transient failure that stays pending moves nothing).
    /// </summary>
    public static string Updated(string cte) => $"""
        select requested_at, domain, 0 as pushes, outcome, 1 as n from {cte} where outcome <> old
        union all
        select requested_at, domain, 0, old, -1 from {cte} where outcome <> old
        """;
}
