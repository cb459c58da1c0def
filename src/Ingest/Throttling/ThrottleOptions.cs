namespace Monal.Push.Ingest.Throttling;

/// <summary>Options of the per-device throttle (configuration section <c>Throttle</c>).</summary>
internal sealed class ThrottleOptions
{
    public const string Section = "Throttle";

    /// <summary>At most one push per device per window (<c>Throttle:Window</c>, docs/operators.md).</summary>
    public TimeSpan Window { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Devices remembered at once (about 100 bytes each); beyond it the oldest are forgotten.</summary>
    public int MaxDevices { get; set; } = 200_000;
}
