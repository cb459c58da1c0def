namespace Monal.Push.Load.Running;

/// <summary>
/// One measured stretch of traffic. Open loop (<see cref="Rate"/> set): publishes leave on a fixed schedule whatever the
/// replies do, and latency counts from the scheduled time, so a stalled server cannot hide its stall (no coordinated
/// omission). Closed loop (<see cref="Outstanding"/> set): a new publish leaves as soon as a reply frees a slot.
/// The phase stops after <see cref="Duration"/> or <see cref="MaxRequests"/>, then waits up to <see cref="Drain"/> for replies.
/// </summary>
internal sealed record LoadPhase(string Name, double? Rate, int? Outstanding, TimeSpan Duration)
{
    public static LoadPhase Open(string name, double rate, TimeSpan duration) => new(name, rate, null, duration);

    public static LoadPhase Closed(string name, int outstanding, TimeSpan duration) => new(name, null, outstanding, duration);

    /// <summary>Hard cap on publishes sent in this phase.</summary>
    public long MaxRequests { get; init; } = 10_000_000;

    public TimeSpan Drain { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Publish to the stateless devices in order, each once (with <see cref="MaxRequests"/> their number), instead of
    /// picking devices at random: creates every device, so that later phases publish to devices that exist.
    /// </summary>
    public bool EachStatelessDeviceOnce { get; init; }

    public bool IsOpenLoop => Rate is not null;

    public string Describe() => IsOpenLoop
        ? $"open loop {Rate:N0}/s"
        : $"closed loop, {Outstanding:N0} outstanding";
}
