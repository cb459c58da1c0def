using Monal.Push.Ledger.Events;

namespace Monal.Push.Ledger.EventStore;

/// <summary>The version a caller expects a stream to be at before its append (optimistic concurrency).</summary>
public readonly record struct ExpectedVersion(long Value)
{
    /// <summary>Append whatever the stream's version is.</summary>
    public static ExpectedVersion Any => new(-1);

    /// <summary>The stream must not exist yet.</summary>
    public static ExpectedVersion NoStream => new(0);

    /// <summary>The stream must be exactly at <paramref name="version"/>.</summary>
    public static ExpectedVersion Exactly(long version) =>
        version > 0 ? new(version) : throw new ArgumentOutOfRangeException(nameof(version), "Use NoStream for a new stream.");

    /// <summary>True for <see cref="Any"/>.</summary>
    public bool IsAny => Value < 0;
}

/// <summary>Causation and correlation ids carried beside an event; never personal data.</summary>
public sealed record EventMetadata(Guid? CorrelationId, Guid? CausationId);

/// <summary>An event as it was stored. Its sequence is the global position: unique, increasing in append order, with gaps.</summary>
public sealed record RecordedEvent(
    long Sequence,
    Guid StreamId,
    long Version,
    string Type,
    object Data,
    EventMetadata? Metadata,
    DateTimeOffset Timestamp);

/// <summary>An event on its way into the store, as inline projections see it (in the append transaction).</summary>
public sealed record PendingEvent(Guid StreamId, object Data, DateTimeOffset Timestamp);

/// <summary>The outcome of an append.</summary>
/// <param name="Version">The stream's version after the append.</param>
/// <param name="LastSequence">The global position of the last appended event.</param>
public readonly record struct AppendResult(long Version, long LastSequence);

/// <summary>One page of the global log.</summary>
public sealed record EventPage(IReadOnlyList<RecordedEvent> Events);

internal static class EventNames
{
    public static string Of(object data) => EventTypes.NameOf(data.GetType());
}
