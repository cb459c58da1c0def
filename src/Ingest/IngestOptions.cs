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
}
