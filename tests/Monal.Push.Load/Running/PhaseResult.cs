using Monal.Push.Load.Measuring;
using Monal.Push.Load.Publishing;

namespace Monal.Push.Load.Running;

/// <summary>What one phase measured. Latencies are in microseconds.</summary>
internal sealed record PhaseResult(
    LoadPhase Phase,
    DateTimeOffset StartedAt,
    DateTimeOffset EndedAt,
    TimeSpan SendWindow,
    TimeSpan ReplyWindow,
    long Sent,
    long Answered,
    LatencyHistogram Latency,
    IReadOnlyDictionary<(RequestCategory Category, string Outcome), long> Outcomes,
    IReadOnlyDictionary<(RequestCategory Category, string Outcome), LatencyHistogram> LatencyByOutcome)
{
    /// <summary>
    /// Open loop: how late each publish was written to the link against its schedule (µs). The latencies are measured
    /// from the schedule, so this is the sender's own share of them. Null for a closed loop.
    /// </summary>
    public LatencyHistogram? SendLateness { get; init; }

    public long Unanswered => Sent - Answered;

    /// <summary>Replies per second from the phase start to the last reply.</summary>
    public double RepliesPerSecond => ReplyWindow.TotalSeconds > 0 ? Answered / ReplyWindow.TotalSeconds : 0;

    public double OfferedPerSecond => SendWindow.TotalSeconds > 0 ? Sent / SendWindow.TotalSeconds : 0;

    public long Count(string outcome) => Outcomes.Where(o => o.Key.Outcome == outcome).Sum(o => o.Value);

    /// <summary>Replies that are not what the category calls for (see <see cref="Expected"/>).</summary>
    public long Unexpected => Outcomes.Where(o => !Expected(o.Key.Category, o.Key.Outcome)).Sum(o => o.Value);

    /// <summary>
    /// Accepted publishes are answered with result; a token Apple declared invalid (the mock's 410s) turns into
    /// item-not-found; wait errors (overload, storage) are never wrong for a server but are reported.
    /// </summary>
    public static bool Expected(RequestCategory category, string outcome) => category switch
    {
        RequestCategory.Stateless or RequestCategory.Registered => outcome is "result" or "cancel/item-not-found",
        RequestCategory.WrongSecret => outcome == "auth/not-authorized",
        RequestCategory.UnknownNode => outcome == "cancel/item-not-found",
        _ => false,
    };
}
