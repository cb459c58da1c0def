using System.Globalization;
using Npgsql;

namespace Monal.Push.Ledger.EventStore;

/// <summary>Where a push-event day table stands between attached and gone.</summary>
public enum PushDayState
{
    /// <summary>A partition of push_events.</summary>
    Attached,

    /// <summary>Left half-detached by an interrupted <c>DETACH … CONCURRENTLY</c>.</summary>
    DetachPending,

    /// <summary>Detached by an interrupted purge but not dropped: no longer seen through push_events.</summary>
    Detached,
}

/// <summary>One table <c>push_events_YYYYMMDD</c> holding the push events of a UTC day.</summary>
public readonly record struct PushDayTable(string Name, DateOnly Day, PushDayState State)
{
    /// <summary>The start of the day (UTC).</summary>
    public DateTimeOffset Lower => new(Day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);

    /// <summary>The start of the next day (UTC): every event of this table is older.</summary>
    public DateTimeOffset Upper => Lower.AddDays(1);

    /// <summary>
    /// The day tables: the partitions of push_events, and the tables an interrupted purge detached (or half-detached)
    /// but did not drop, which the purge finishes and the audit reports.
    /// </summary>
    public static async Task<IReadOnlyList<PushDayTable>> ReadAsync(NpgsqlDataSource dataSource, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        var tables = new List<PushDayTable>();
        await using var cmd = dataSource.CreateCommand("""
            select c.relname, i.inhrelid is not null, coalesce(i.inhdetachpending, false)
            from pg_class c
            left join pg_inherits i on i.inhrelid = c.oid and i.inhparent = 'push_events'::regclass
            where c.relkind = 'r' and c.relnamespace = current_schema()::regnamespace
              and c.relname ~ '^push_events_[0-9]{8}$'
            order by 1
            """);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var name = reader.GetString(0);
            if (DateOnly.TryParseExact(name["push_events_".Length..], "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
            {
                var state = !reader.GetBoolean(1) ? PushDayState.Detached
                    : reader.GetBoolean(2) ? PushDayState.DetachPending
                    : PushDayState.Attached;
                tables.Add(new PushDayTable(name, day, state));
            }
        }

        return tables;
    }
}
