using System.Globalization;
using System.Text;
using Monal.Push.Load.Publishing;

namespace Monal.Push.Load.Running;

/// <summary>Text for one phase: throughput, latency percentiles and the replies per request category.</summary>
internal static class PhaseReport
{
    public static string Ms(long micros) => (micros / 1000.0).ToString(micros < 10_000 ? "0.00" : "0.0", CultureInfo.InvariantCulture);

    public static string Describe(PhaseResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var h = r.Latency;
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture,
            $"{r.Phase.Name} ({r.Phase.Describe()}): sent {r.Sent:N0} in {r.SendWindow.TotalSeconds:N1} s ({r.OfferedPerSecond:N0}/s), ");
        text.Append(CultureInfo.InvariantCulture,
            $"answered {r.Answered:N0} ({r.RepliesPerSecond:N0}/s), unanswered {r.Unanswered:N0}, unexpected {r.Unexpected:N0}\n");
        text.Append(CultureInfo.InvariantCulture,
            $"  latency ms: p50 {Ms(h.ValueAtPercentile(50))}  p90 {Ms(h.ValueAtPercentile(90))}  p99 {Ms(h.ValueAtPercentile(99))}  ");
        text.Append(CultureInfo.InvariantCulture,
            $"p99.9 {Ms(h.ValueAtPercentile(99.9))}  max {Ms(h.Max)}  mean {h.Mean / 1000:N2}\n");
        if (r.SendLateness is { TotalCount: > 0 } late)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"  sent late against the schedule, ms (the generator's own share of the latencies): p50 {Ms(late.ValueAtPercentile(50))}  " +
                $"p99 {Ms(late.ValueAtPercentile(99))}  max {Ms(late.Max)}\n");
        }

        foreach (var category in Enum.GetValues<RequestCategory>())
        {
            var rows = r.Outcomes.Where(o => o.Key.Category == category).OrderByDescending(o => o.Value).ToList();
            if (rows.Count == 0)
            {
                continue;
            }

            text.Append(CultureInfo.InvariantCulture, $"  {category,-12}");
            foreach (var row in rows)
            {
                text.Append(CultureInfo.InvariantCulture, $" {row.Key.Outcome} {row.Value:N0}{(PhaseResult.Expected(category, row.Key.Outcome) ? "" : " (!)")}");
                if (r.LatencyByOutcome.TryGetValue(row.Key, out var own) && own.TotalCount > 0)
                {
                    // Each kind of answer on its own: a wrong secret is refused from the device cache without an
                    // append, so its latency against an accepted publish's shows what the commit adds.
                    text.Append(CultureInfo.InvariantCulture, $" (p50 {Ms(own.ValueAtPercentile(50))} p99 {Ms(own.ValueAtPercentile(99))} ms)");
                }

                text.Append(';');
            }

            text.Append('\n');
        }

        return text.ToString();
    }
}
