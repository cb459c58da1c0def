using Microsoft.Extensions.Logging;

namespace Monal.Push.Ingest.Limiting;

/// <summary>The rate-limited log line of the HTTP rate limiter's refusals (one shared key: addresses are never logged).</summary>
internal sealed class HttpLimitNotices(TimeProvider clock, ILogger<HttpLimitNotices> logger)
{
    public LimitNotices Notices { get; } = new(clock);

    public ILogger Logger => logger;
}
