namespace Monal.Push.Ledger.EventStore;

/// <summary>
/// The SQLSTATEs our own SQL raises (migrations/0001_event_store.sql and the inline projections' functions), translated
/// in one place, <c>EventStore.Translate</c>.
/// </summary>
public static class LedgerSqlStates
{
    /// <summary>An append found its stream at another version than expected (<see cref="StreamVersionConflictException"/>).</summary>
    public const string VersionConflict = "MPV01";

    /// <summary>An inline projection refused the append, naming why as the constraint (<see cref="AppendRejectedException"/>).</summary>
    public const string ProjectionRefused = "MPG01";
}
