using System.Globalization;

namespace Monal.Push.Projections;

/// <summary>
/// Timestamps go to PostgreSQL as ISO 8601 text, not binary. Events carry 100 ns ticks and timestamptz keeps
/// microseconds: PostgreSQL rounds the text it parses (a rebuild reads the events' JSON) while Npgsql's binary
/// encoding truncates, so only text makes the incremental and the rebuilt read models agree to the microsecond.
/// </summary>
internal static class PgTime
{
    public static string Iso(DateTimeOffset value) => value.ToString("O", CultureInfo.InvariantCulture);

    public static string? Iso(DateTimeOffset? value) => value?.ToString("O", CultureInfo.InvariantCulture);
}
