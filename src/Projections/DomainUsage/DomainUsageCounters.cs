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
    /// The statement's tail: CTE <c>delta</c> from what the statement's CTEs changed in push_log, added to
    /// domain_usage. <paramref name="inserted"/> returns (requested_at, domain, outcome) of each push inserted: it counts
    /// once, with its outcome. <paramref name="updated"/> returns (requested_at, domain, outcome, old) of each outcome
    /// applied: one count moves from the old outcome to the new ('pending' is counted only in pushes, so a transient
    /// failure that stays pending moves nothing).
    /// </summary>
    public static string AddChanges(string? inserted = null, string? updated = null)
    {
        var parts = new List<string>(2);
        if (inserted is not null)
        {
            parts.Add($"select requested_at, domain, 1 as pushes, outcome, 1 as n from {inserted}");
        }

        if (updated is not null)
        {
            parts.Add($"""
                select u.requested_at, u.domain, 0 as pushes, x.outcome, x.n
                from {updated} u cross join lateral (values (u.outcome, 1), (u.old, -1)) as x(outcome, n)
                where u.outcome <> u.old
                """);
        }

        return $"""
            , delta as (
            {string.Join("\nunion all\n", parts)}
            )
            {AddDelta}
            """;
    }

    private const string AddDelta = """
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
}
