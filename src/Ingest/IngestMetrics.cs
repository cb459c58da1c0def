using System.Diagnostics;
using System.Diagnostics.Metrics;
using Monal.Push.Ingest.Component;
using Monal.Push.Ingest.Limiting;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Ingest.Throttling;
using Monal.Push.Ledger.Events;

namespace Monal.Push.Ingest;

/// <summary>
/// Ingest's instruments on the <c>Monal.Push.Ingest</c> meter. Tags are closed sets (mode, decision, error type and
/// condition, action, channel, limit): never a node, token, device id, JID or domain.
/// </summary>
internal sealed class IngestMetrics
{
    public const string MeterName = "Monal.Push.Ingest";

    private readonly Counter<long> _publishes;
    private readonly Counter<long> _replies;
    private readonly Counter<long> _registrations;
    private readonly Counter<long> _limits;
    private readonly Histogram<double> _duration;

    /// <param name="meterFactory">The host's meter factory.</param>
    /// <param name="services">
    /// Where the component link is found when reconnects are observed. Resolved lazily: the link depends on the router,
    /// the router on the handlers and the handlers on these metrics, so taking the link here would be a cycle.
    /// </param>
    public IngestMetrics(IMeterFactory meterFactory, IServiceProvider? services = null)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        _publishes = meter.CreateCounter<long>(
            "monal.push.ingest.publishes", "{publish}", "Publishes handled, by addressing mode, throttle decision and outcome.");
        _replies = meter.CreateCounter<long>(
            "monal.push.ingest.replies", "{reply}", "Publish replies, by error type and condition ('result' when accepted).");
        _registrations = meter.CreateCounter<long>(
            "monal.push.ingest.registrations", "{request}", "v1 registrations, by action, channel and outcome.");
        _duration = meter.CreateHistogram<double>(
            "monal.push.ingest.publish.duration", "s",
            "From a publish reaching the publish handler to its answer (for an accepted one, its commit in the ledger included), by outcome.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
        _limits = meter.CreateCounter<long>(
            "monal.push.ingest.limits", "{decision}",
            "Decisions of the abuse limits, by limit (publish-rate, domain-pending, new-devices, http-requests) and outcome (allowed, refused).");
        if (services is not null)
        {
            var limiter = new Lazy<DomainLimiter?>(() => services.GetService(typeof(DomainLimiter)) as DomainLimiter);
            meter.CreateObservableGauge(
                "monal.push.ingest.limits.domains", () => Domains(limiter), "{domain}",
                "Domains the publish limiter remembers (state=tracked) and refused within the last minute (state=limited).");
            var connection = new Lazy<ComponentConnection?>(() => services.GetService(typeof(ComponentConnection)) as ComponentConnection);
            meter.CreateObservableCounter(
                "monal.push.ingest.component.reconnects", () => Reconnects(connection), "{reconnect}",
                "Times the XEP-0114 component link was re-established.");
        }
    }

    /// <param name="mode">How the publish addressed its device.</param>
    /// <param name="decision">The throttle's decision, when the publish reached it.</param>
    /// <param name="outcome">The answer.</param>
    /// <param name="startedAt">When the publish reached the handler (<see cref="Stopwatch.GetTimestamp()"/>).</param>
    public void Published(DeviceMode mode, ThrottleDecision? decision, PublishOutcome outcome, long startedAt)
    {
        var condition = outcome.Condition ?? "result";
        _duration.Record(Stopwatch.GetElapsedTime(startedAt).TotalSeconds, new KeyValuePair<string, object?>("outcome", condition));
        var type = outcome.ErrorType is { } t ? Stanzas.StanzaError.TypeName(t) : "result";
        _publishes.Add(1,
            new("mode", mode.Name()),
            new("decision", decision?.ToString().ToLowerInvariant() ?? "none"),
            new("outcome", condition));
        _replies.Add(1, new("type", type), new("condition", condition));
    }

    public void Registration(string action, string channel, string outcome) =>
        _registrations.Add(1, new("action", action), new("channel", channel), new("outcome", outcome));

    /// <summary>One decision of a limit; the tags are closed sets (never a domain or an address).</summary>
    public void Limit(LimitKind kind, bool allowed) =>
        _limits.Add(1, new("limit", kind.Tag()), new("outcome", allowed ? "allowed" : "refused"));

    private static IEnumerable<Measurement<int>> Domains(Lazy<DomainLimiter?> limiter)
    {
        DomainLimiter? value;
        try
        {
            value = limiter.Value;
        }
        catch (ObjectDisposedException)
        {
            yield break; // the host is stopping
        }

        if (value is null)
        {
            yield break;
        }

        yield return new Measurement<int>(value.Tracked, new KeyValuePair<string, object?>("state", "tracked"));
        yield return new Measurement<int>(value.Limited, new KeyValuePair<string, object?>("state", "limited"));
    }

    private static long Reconnects(Lazy<ComponentConnection?> connection)
    {
        try
        {
            return connection.Value?.Reconnects ?? 0;
        }
        catch (ObjectDisposedException)
        {
            return 0; // the host is stopping
        }
    }
}
