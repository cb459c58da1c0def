namespace Monal.Push.Ingest.Limiting;

/// <summary>Which limit refused (or let through) a request: the <c>limit</c> tag of the metrics, a closed set.</summary>
internal enum LimitKind
{
    /// <summary>A domain's publishes per second (<c>Limits:PublishesPerSecond</c>).</summary>
    PublishRate,

    /// <summary>A domain's publishes being handled at once (<c>Limits:MaxPendingPerDomain</c>).</summary>
    DomainPending,

    /// <summary>A domain's or HTTP client's new devices (<c>Limits:NewDevicesPerHour</c>, <c>Limits:Http:NewDevicesPerHour</c>).</summary>
    NewDevices,

    /// <summary>An HTTP client's registration requests (<c>Limits:Http:RequestsPerMinute</c>).</summary>
    HttpRequests,

    /// <summary>
    /// The whole process is behind: publishes wait longer than <c>Limits:QueueDelayTarget</c> steadily, and this
    /// domain has at least its share of those pending.
    /// </summary>
    Overload,
}

/// <summary>Metric tag values of <see cref="LimitKind"/>.</summary>
internal static class LimitKinds
{
    public static string Tag(this LimitKind kind) => kind switch
    {
        LimitKind.PublishRate => "publish-rate",
        LimitKind.DomainPending => "domain-pending",
        LimitKind.NewDevices => "new-devices",
        LimitKind.HttpRequests => "http-requests",
        LimitKind.Overload => "overload",
        _ => "other",
    };
}
