using System.Globalization;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// Serve's own latency histograms read from its `/metrics` before and after a phase: a publish's time in serve's
/// handler (`monal_push_ingest_publish_duration`, every outcome together) against the generator's, and where an
/// append's time went (`monal_ledger_append_wait_seconds`, `monal_ledger_group_commit_seconds`).
/// </summary>
internal sealed class ServeHistograms
{
    private static readonly (string Name, string Label)[] Histograms =
    [
        ("monal_push_ingest_publish_duration", "publish in serve"),
        ("monal_ledger_append_wait_seconds", "append_wait_seconds"),
        ("monal_ledger_group_commit_seconds", "group_commit_seconds"),
    ];

    private readonly Dictionary<string, SortedDictionary<double, long>> _buckets;
    private readonly Dictionary<string, (double Sum, long Count)> _totals;

    private ServeHistograms(Dictionary<string, SortedDictionary<double, long>> buckets, Dictionary<string, (double, long)> totals)
    {
        _buckets = buckets;
        _totals = totals;
    }

    /// <summary>serve's `/metrics` text, or null when it cannot be read.</summary>
    public static async Task<string?> ScrapeAsync(HttpClient http, Uri serve, CancellationToken ct)
    {
        try
        {
            return await http.GetStringAsync(new Uri(serve, "metrics"), ct);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    public static ServeHistograms Parse(string text)
    {
        var buckets = new Dictionary<string, SortedDictionary<double, long>>();
        var totals = new Dictionary<string, (double Sum, long Count)>();
        foreach (var line in PrometheusLine.Samples(text))
        {
            foreach (var (name, _) in Histograms)
            {
                if (!line.StartsWith(name, StringComparison.Ordinal))
                {
                    continue;
                }

                var value = PrometheusLine.Value(line);
                var rest = line[name.Length..];
                if (rest.StartsWith("_bucket", StringComparison.Ordinal) && PrometheusLine.Label(rest, "le") is { } le)
                {
                    var bound = le == "+Inf" ? double.PositiveInfinity : double.Parse(le, CultureInfo.InvariantCulture);
                    if (!buckets.TryGetValue(name, out var b))
                    {
                        buckets[name] = b = [];
                    }

                    // A histogram with labels (the publish's outcome) has one series per label set: they add up.
                    b[bound] = b.GetValueOrDefault(bound) + (long)value;
                }
                else if (rest.StartsWith("_sum", StringComparison.Ordinal))
                {
                    var (sum, count) = totals.GetValueOrDefault(name);
                    totals[name] = (sum + value, count);
                }
                else if (rest.StartsWith("_count", StringComparison.Ordinal))
                {
                    var (sum, count) = totals.GetValueOrDefault(name);
                    totals[name] = (sum, count + (long)value);
                }
            }
        }

        return new ServeHistograms(buckets, totals);
    }

    /// <summary>One part per histogram: count, mean and the bucket bounds holding the median and the 99th percentile.</summary>
    public string Since(ServeHistograms before)
    {
        var parts = new List<string>();
        foreach (var (name, label) in Histograms)
        {
            if (!_buckets.TryGetValue(name, out var after))
            {
                continue;
            }

            var earlier = before._buckets.GetValueOrDefault(name);
            var (sum, count) = _totals.GetValueOrDefault(name);
            var (sum0, count0) = before._totals.GetValueOrDefault(name);
            var n = count - count0;
            if (n <= 0)
            {
                continue;
            }

            var mean = (sum - sum0) / n * 1000;
            parts.Add(string.Create(CultureInfo.InvariantCulture,
                $"{label}: {n:N0}, mean {mean:N2} ms, p50 ≤ {Bound(after, earlier, n, 0.50)}, p99 ≤ {Bound(after, earlier, n, 0.99)}"));
        }

        return string.Join("; ", parts);
    }

    // Prometheus buckets are cumulative: the first bound whose count reaches the rank.
    private static string Bound(SortedDictionary<double, long> after, SortedDictionary<double, long>? before, long n, double q)
    {
        var rank = (long)Math.Ceiling(n * q);
        foreach (var (bound, count) in after)
        {
            if (count - (before?.GetValueOrDefault(bound) ?? 0) >= rank)
            {
                return double.IsPositiveInfinity(bound) ? "∞" : string.Create(CultureInfo.InvariantCulture, $"{bound * 1000:0.###} ms");
            }
        }

        return "?";
    }
}
