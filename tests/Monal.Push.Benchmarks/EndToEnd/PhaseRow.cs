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
    public double Seconds => (Result.EndedAt - Result.StartedAt).TotalSeconds;

    public double DeliveredPerSecond => Seconds > 0 ? PushesDelivered / Seconds : 0;

    public double CpuCores => Seconds > 0 ? ServeCpu.TotalSeconds / Seconds : 0;

    public double CpuMicrosPerPublish => Result.Answered > 0 ? ServeCpu.TotalMilliseconds * 1000 / Result.Answered : 0;
}
