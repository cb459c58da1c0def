using System.Diagnostics.Metrics;

namespace Monal.Push.Delivery.Dispatching;

/// <summary>
/// Metrics of the `Monal.Push.Delivery` meter. Tags carry Apple's status and reason, the push module's configured
/// name and our outcome names only: never a token, device id or domain.
/// </summary>
internal sealed class DeliveryMetrics : IDisposable
{
    public const string MeterName = "Monal.Push.Delivery";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _requests;
    private readonly Counter<long> _outcomes;
    private readonly Histogram<double> _latency;

    public DeliveryMetrics()
    {
        _requests = _meter.CreateCounter<long>("monal.push.apns.requests", "{request}", "APNs requests by HTTP status (0: no answer) and reason.");
        _outcomes = _meter.CreateCounter<long>("monal.push.delivery.outcomes", "{push}", "Outcomes recorded by the dispatcher.");
        _latency = _meter.CreateHistogram<double>("monal.push.delivery.latency", "ms", "From the moment a push was due to Apple's acceptance.");
    }

    public void ApnsRequest(string module, int status, string? reason) =>
        _requests.Add(1, new("module", module), new("status", status), new("reason", reason ?? ""));

    public void Outcome(DeliveryOutcome outcome) => _outcomes.Add(1, new KeyValuePair<string, object?>("outcome", outcome.Tag()));

    public void Latency(string module, double milliseconds) => _latency.Record(milliseconds, new KeyValuePair<string, object?>("module", module));

    public void Dispose() => _meter.Dispose();
}
