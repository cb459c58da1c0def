using System.Diagnostics.Metrics;
using Monal.Push.Ingest.Component;
using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ingest.Throttling;

namespace Monal.Push.Ingest;

/// <summary>
/// Ingest's instruments on the <c>Monal.Push.Ingest</c> meter. Tags are closed sets (mode, decision, error type and
/// condition, action, channel): never a node, token, device id, JID or domain.
/// </summary>
internal sealed class IngestMetrics
{
    public const string MeterName = "Monal.Push.Ingest";

    private readonly Counter<long> _publishes;
    private readonly Counter<long> _replies;
    private readonly Counter<long> _registrations;

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
        if (services is not null)
        {
            var connection = new Lazy<ComponentConnection?>(() => services.GetService(typeof(ComponentConnection)) as ComponentConnection);
            meter.CreateObservableCounter(
                "monal.push.ingest.component.reconnects", () => Reconnects(connection), "{reconnect}",
                "Times the XEP-0114 component link was re-established.");
        }
    }

    public void Published(string mode, ThrottleDecision? decision, PublishOutcome outcome)
    {
        var condition = outcome.Condition ?? "result";
        var type = outcome.ErrorType is { } t ? Stanzas.StanzaError.TypeName(t) : "result";
        _publishes.Add(1,
            new("mode", mode),
            new("decision", decision?.ToString().ToLowerInvariant() ?? "none"),
            new("outcome", condition));
        _replies.Add(1, new("type", type), new("condition", condition));
    }

    public void Registration(string action, string channel, string outcome) =>
        _registrations.Add(1, new("action", action), new("channel", channel), new("outcome", outcome));

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
