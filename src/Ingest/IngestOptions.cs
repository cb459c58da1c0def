namespace Monal.Push.Ingest;

/// <summary>Options of the publish path (configuration section <c>Ingest</c>).</summary>
internal sealed class IngestOptions
{
    public const string Section = "Ingest";

    /// <summary>How long a requested push may wait for delivery before it expires (the APNs expiration).</summary>
    public TimeSpan PushTtl { get; set; } = TimeSpan.FromDays(1);

    /// <summary>
    /// Appends in flight at once from the publish path. Beyond it a publish is answered <c>wait</c>/<c>resource-constraint</c>
    /// at once, so a stalled database cannot make memory grow without bound (the server retries later).
    /// </summary>
    public int MaxPendingAppends { get; set; } = 10_000;

    /// <summary>
    /// Publishes working against the database at once (device lookup, new device, append). The others wait their turn
    /// in memory, where the overload check (<c>Limits:QueueDelayTarget</c>) sees them wait. Without this bound, 2,048
    /// publishes in flight each held a pooled connection for their lookups while the group commit's writers waited for
    /// one, and throughput fell by half under overload (docs/benchmarks.md, "Issue 16").
    /// </summary>
    public int MaxConcurrentPublishes { get; set; } = 256;

    /// <summary>
    /// The push module of a publish to a token node that names none: no publish-options, an empty one, or a form
    /// with only FORM_TYPE. Monal 5.2.0 enabled push without a form, and fpush answers such a publish with its
    /// default module. Null: such a publish is answered <c>modify</c>/<c>bad-request</c> with a text naming this key.
    /// </summary>
    public string? DefaultPushModule { get; set; }
}
