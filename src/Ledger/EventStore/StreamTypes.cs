namespace Monal.Push.Ledger.EventStore;

/// <summary>The stream types stored in <c>streams.type</c> (stored values: never change them).</summary>
public static class StreamTypes
{
    /// <summary>A device's stream: its registration, its pushes and their outcomes.</summary>
    public const string Device = "device";

    /// <summary>The streams of the service itself (retention runs, erasures, exports).</summary>
    public const string System = "system";
}
