namespace Monal.Push.Ingest.Limiting;

/// <summary>
/// What one sender may cost us (configuration section <c>Limits</c>, docs/operators.md "Limits"; issue 18). A
/// sender is an XMPP domain on the component link, or a client network on the HTTP registration API. Every refusal
/// says "try later" (<c>wait</c>/<c>resource-constraint</c>, HTTP 429), never "forget this node".
/// </summary>
public sealed class LimitsOptions
{
    public const string Section = "Limits";

    /// <summary>
    /// The longest a new-device bucket may take to fill: a bucket's row is deleted once full, so no per-sender count
    /// outlives the privacy policy's 14 days (docs/product.md).
    /// </summary>
    public static readonly TimeSpan MaxFillTime = TimeSpan.FromDays(14);

    /// <summary>Publishes per second one domain may send, per process (a token bucket's refill rate).</summary>
    public double PublishesPerSecond { get; set; } = 1_000;

    /// <summary>Publishes one domain may send at once above its rate (the bucket's size).</summary>
    public int PublishBurst { get; set; } = 5_000;

    /// <summary>
    /// Publishes of one domain being handled at once, per process. The component link reads at most
    /// <c>Xmpp:Component:MaxInFlight</c> stanzas ahead and every domain shares it, so one domain whose publishes
    /// wait for the ledger must not hold all of it.
    /// </summary>
    public int MaxPendingPerDomain { get; set; } = 1_024;

    /// <summary>
    /// How long publishes may wait in this process, steadily, before it refuses more (issue 16): when even the
    /// quickest publish answered during <see cref="QueueDelayInterval"/> took longer, the process is behind, and new
    /// publishes of the domains holding at least their share of those pending are answered
    /// <c>wait</c>/<c>resource-constraint</c> at once instead of queueing for seconds. A burst that drains within the
    /// interval is never refused. Zero turns the check off.
    /// </summary>
    public TimeSpan QueueDelayTarget { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The window over which <see cref="QueueDelayTarget"/> must be exceeded throughout.</summary>
    public TimeSpan QueueDelayInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>New devices one domain may create per hour (publishes to unknown tokens, ad-hoc registrations).</summary>
    public double NewDevicesPerHour { get; set; } = 10_000;

    /// <summary>New devices one domain may create at once above its rate.</summary>
    public int NewDeviceBurst { get; set; } = 10_000;

    /// <summary>Domains remembered in memory at once; beyond it, the others share one bucket.</summary>
    public int MaxDomains { get; set; } = 100_000;

    /// <summary>The HTTP registration API (<c>Limits:Http</c>).</summary>
    public HttpLimits Http { get; set; } = new();

    /// <summary>Limits of the HTTP v1 registration API, per client network (an IPv4 address, an IPv6 /64).</summary>
    public sealed class HttpLimits
    {
        /// <summary>Registration requests per minute from one client network (ASP.NET Core's token bucket limiter).</summary>
        public int RequestsPerMinute { get; set; } = 60;

        /// <summary>Requests one client network may send at once above its rate.</summary>
        public int RequestBurst { get; set; } = 60;

        /// <summary>New devices one client network may register per hour.</summary>
        public double NewDevicesPerHour { get; set; } = 100;

        /// <summary>New devices one client network may register at once above its rate.</summary>
        public int NewDeviceBurst { get; set; } = 100;

        /// <summary>How long one registration request may take, body included.</summary>
        public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);
    }

    /// <summary>Problems, each naming its key; empty when the options are usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!(PublishesPerSecond > 0))
        {
            problems.Add("Limits:PublishesPerSecond must be positive.");
        }

        if (PublishBurst < 1)
        {
            problems.Add("Limits:PublishBurst must be at least 1.");
        }

        if (MaxPendingPerDomain < 1)
        {
            problems.Add("Limits:MaxPendingPerDomain must be at least 1.");
        }

        if (MaxDomains < 1)
        {
            problems.Add("Limits:MaxDomains must be at least 1.");
        }

        if (QueueDelayTarget < TimeSpan.Zero)
        {
            problems.Add("Limits:QueueDelayTarget must not be negative (zero turns the overload check off).");
        }

        if (QueueDelayInterval <= TimeSpan.Zero)
        {
            problems.Add("Limits:QueueDelayInterval must be positive.");
        }

        CheckBucket(problems, "Limits:NewDevicesPerHour", NewDevicesPerHour, "Limits:NewDeviceBurst", NewDeviceBurst);
        CheckBucket(problems, "Limits:Http:NewDevicesPerHour", Http.NewDevicesPerHour, "Limits:Http:NewDeviceBurst", Http.NewDeviceBurst);
        if (Http.RequestsPerMinute < 1)
        {
            problems.Add("Limits:Http:RequestsPerMinute must be at least 1.");
        }

        if (Http.RequestBurst < 1)
        {
            problems.Add("Limits:Http:RequestBurst must be at least 1.");
        }

        if (Http.RequestTimeout <= TimeSpan.Zero)
        {
            problems.Add("Limits:Http:RequestTimeout must be positive.");
        }

        return problems;
    }

    /// <summary>One line for doctor and /health/ready.</summary>
    public string Describe() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"per domain: {PublishesPerSecond:0.##} publishes/s (burst {PublishBurst}), {MaxPendingPerDomain} pending, " +
        $"over its share while publishes wait over {QueueDelayTarget.TotalMilliseconds:0} ms for {QueueDelayInterval.TotalMilliseconds:0} ms, " +
        $"{NewDevicesPerHour:0.##} new devices/h (burst {NewDeviceBurst}); per HTTP client: {Http.RequestsPerMinute} " +
        $"registrations/min (burst {Http.RequestBurst}), {Http.NewDevicesPerHour:0.##} new devices/h (burst {Http.NewDeviceBurst})");

    private static void CheckBucket(List<string> problems, string rateKey, double perHour, string burstKey, int burst)
    {
        if (!(perHour > 0))
        {
            problems.Add($"{rateKey} must be positive.");
            return;
        }

        if (burst < 1)
        {
            problems.Add($"{burstKey} must be at least 1.");
            return;
        }

        if (TimeSpan.FromHours(burst / perHour) > MaxFillTime)
        {
            problems.Add($"{burstKey} / {rateKey} must not exceed 14 days (336 hours): a sender's count is kept until its bucket is full again, and the privacy policy keeps no such count longer.");
        }
    }
}
