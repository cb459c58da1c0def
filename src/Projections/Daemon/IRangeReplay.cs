using Npgsql;

namespace Monal.Push.Projections.Daemon;

/// <summary>
/// A projection that can replay a settled range of positions inside the database (rebuilds): same result as
/// applying the range's events page by page, without reading them into the process.
/// </summary>
internal interface IRangeReplay
{
    /// <summary>Adds the statements that apply every event with <paramref name="after"/> &lt; position ≤ <paramref name="upTo"/>.</summary>
    void AddRange(NpgsqlBatch batch, long after, long upTo);
}
