using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Monal.Push.Cli.Observability;

/// <summary>
/// Exports the System.Diagnostics.Metrics instruments of every <c>Monal.Push.*</c> meter in the Prometheus text
/// format for <c>/metrics</c>. Written by hand: the OpenTelemetry Prometheus exporter is not served by the registry
/// here, and counters, histograms and gauges are all we need. Tags never carry personal data (each stage's rule).
/// </summary>
internal sealed class PrometheusMetrics : IDisposable
{
    private static readonly double[] DefaultBuckets = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, Series> _series = new();

    public PrometheusMetrics(IMeterFactory? meterFactory = null)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            // Meters made by a host's IMeterFactory belong to that host: with several hosts in one process (tests),
            // each /metrics shows its own host's and the process-wide (unscoped) meters only.
            var ours = instrument.Meter.Scope is null || ReferenceEquals(instrument.Meter.Scope, meterFactory);
            if (ours && instrument.Meter.Name.StartsWith("Monal.Push", StringComparison.Ordinal))
            {
                _series.TryAdd(instrument, new Series(instrument, BucketsOf(instrument)));
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (_series.TryGetValue(instrument, out var series))
        {
            series.Record(value, LabelsOf(tags));
        }
    }

    /// <summary>The exposition text: observable instruments are read now, the others as accumulated.</summary>
    public string Render()
    {
        try
        {
            _listener.RecordObservableInstruments();
        }
        catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException or AggregateException)
        {
            // An observable callback of a component that is shutting down: serve what was accumulated.
        }

        var text = new StringBuilder();
        foreach (var series in _series.Values.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            series.Render(text);
        }

        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    private static double[]? BucketsOf(Instrument instrument)
    {
        if (instrument is not (Histogram<int> or Histogram<long> or Histogram<double>))
        {
            return null;
        }

        var advice = instrument switch
        {
            Histogram<int> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<long> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<double> h => h.Advice?.HistogramBucketBoundaries?.ToArray(),
            _ => null,
        };
        return advice is { Length: > 0 } ? advice : DefaultBuckets;
    }

    private static string LabelsOf(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0)
        {
            return "";
        }

        var pairs = new List<string>(tags.Length);
        foreach (var tag in tags)
        {
            var value = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "";
            pairs.Add($"{Sanitize(tag.Key)}=\"{value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)}\"");
        }

        pairs.Sort(StringComparer.Ordinal);
        return string.Join(",", pairs);
    }

    internal static string Sanitize(string name)
    {
        var chars = name.Select(c => char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_').ToArray();
        return new string(chars);
    }

    private sealed class Series(Instrument instrument, double[]? buckets)
    {
        private readonly ConcurrentDictionary<string, Cell> _cells = new(StringComparer.Ordinal);

        // Prometheus names counters "…_total"; instruments named the OpenTelemetry way ("monal.push.x") get it here.
        public string Name { get; } = Sanitize(instrument.Name) is var n && buckets is null && !instrument.IsObservable
            && instrument is Counter<int> or Counter<long> or Counter<double> && !n.EndsWith("_total", StringComparison.Ordinal)
                ? n + "_total"
                : Sanitize(instrument.Name);

        private string Type => instrument switch
        {
            _ when buckets is not null => "histogram",
            ObservableGauge<int> or ObservableGauge<long> or ObservableGauge<double> => "gauge",
            Gauge<int> or Gauge<long> or Gauge<double> => "gauge",
            UpDownCounter<int> or UpDownCounter<long> or UpDownCounter<double> => "gauge",
            ObservableUpDownCounter<int> or ObservableUpDownCounter<long> or ObservableUpDownCounter<double> => "gauge",
            _ => "counter",
        };

        private bool Replaces => instrument.IsObservable || Type == "gauge" && instrument is not (UpDownCounter<int> or UpDownCounter<long> or UpDownCounter<double>);

        public void Record(double value, string labels)
        {
            var cell = _cells.GetOrAdd(labels, _ => new Cell(buckets));
            cell.Add(value, Replaces);
        }

        public void Render(StringBuilder text)
        {
            if (_cells.IsEmpty)
            {
                return;
            }

            text.Append("# HELP ").Append(Name).Append(' ').Append(instrument.Description ?? Name).Append('\n');
            text.Append("# TYPE ").Append(Name).Append(' ').Append(Type).Append('\n');
            foreach (var (labels, cell) in _cells.OrderBy(c => c.Key, StringComparer.Ordinal))
            {
                cell.Render(text, Name, labels);
            }
        }
    }

    private sealed class Cell(double[]? buckets)
    {
        private readonly object _gate = new();
        private readonly long[]? _counts = buckets is null ? null : new long[buckets.Length];
        private double _sum;
        private long _count;

        public void Add(double value, bool replace)
        {
            lock (_gate)
            {
                if (replace)
                {
                    _sum = value;
                    return;
                }

                _sum += value;
                _count++;
                if (_counts is not null)
                {
                    var i = Array.FindIndex(buckets!, b => value <= b);
                    if (i >= 0)
                    {
                        _counts[i]++;
                    }
                }
            }
        }

        public void Render(StringBuilder text, string name, string labels)
        {
            lock (_gate)
            {
                if (_counts is null)
                {
                    Line(text, name, labels, _sum);
                    return;
                }

                long cumulative = 0;
                for (var i = 0; i < buckets!.Length; i++)
                {
                    cumulative += _counts[i];
                    var le = $"le=\"{buckets[i].ToString(CultureInfo.InvariantCulture)}\"";
                    Line(text, name + "_bucket", labels.Length == 0 ? le : labels + "," + le, cumulative);
                }

                Line(text, name + "_bucket", labels.Length == 0 ? "le=\"+Inf\"" : labels + ",le=\"+Inf\"", _count);
                Line(text, name + "_sum", labels, _sum);
                Line(text, name + "_count", labels, _count);
            }
        }

        private static void Line(StringBuilder text, string name, string labels, double value)
        {
            text.Append(name);
            if (labels.Length > 0)
            {
                text.Append('{').Append(labels).Append('}');
            }

            text.Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        }
    }
}
