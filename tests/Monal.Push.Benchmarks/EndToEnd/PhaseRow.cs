using Monal.Push.Load.Running;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>One measured phase with what `serve` spent on it and what the ledger says was delivered.</summary>
internal sealed record PhaseRow(
    PhaseResult Result,
    TimeSpan ServeCpu,
    long PeakRssBytes,
    bool PeakRssIsPerPhase,
    long PushesRequested,
    long PushesDelivered,
    long PushesFailed)
{
    /// <summary>Pushes the mock answered 200 whose apns-id it had answered 200 before (the target is zero).</summary>
    public long DuplicateDeliveries { get; init; }

    /// <summary>What the database's client backends were doing during the phase (<see cref="WaitSampler"/>).</summary>
    public string DatabaseWaits { get; init; } = "";

    public double Seconds => (Result.EndedAt - Result.StartedAt).TotalSeconds;

    public double DeliveredPerSecond => Seconds > 0 ? PushesDelivered / Seconds : 0;

    public double CpuCores => Seconds > 0 ? ServeCpu.TotalSeconds / Seconds : 0;

    public double CpuMicrosPerPublish => Result.Answered > 0 ? ServeCpu.TotalMilliseconds * 1000 / Result.Answered : 0;

    /// <summary>CPU the private cluster's processes used during the phase (zero with MONAL_BENCH_DB).</summary>
    public TimeSpan DatabaseCpu { get; init; }

    public double DatabaseCpuMicrosPerPublish => Result.Answered > 0 ? DatabaseCpu.TotalMilliseconds * 1000 / Result.Answered : 0;

    /// <summary>CPU the benchmark process used during the phase: the load generator playing the XMPP server, the mock APNs and the samplers.</summary>
    public TimeSpan RigCpu { get; init; }

    public double RigCpuMicrosPerPublish => Result.Answered > 0 ? RigCpu.TotalMilliseconds * 1000 / Result.Answered : 0;

    /// <summary>The share of the machine's cores that was busy during the phase, every process counted.</summary>
    public double MachineBusy { get; init; }
}
