using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Monal.Push.Ingest.Component;

/// <summary>Healthy while the XEP-0114 link is up; the counters go into the report for operators.</summary>
internal sealed class ComponentHealthCheck(ComponentConnection connection) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>
        {
            ["reconnects"] = connection.Reconnects,
            ["handshakeFailures"] = connection.HandshakeFailures,
            ["stanzasReceived"] = connection.StanzasReceived,
            ["inFlight"] = connection.InFlight,
        };
        return Task.FromResult(connection.IsConnected
            ? HealthCheckResult.Healthy("XMPP component connected", data)
            : HealthCheckResult.Unhealthy("XMPP component not connected", data: data));
    }
}
