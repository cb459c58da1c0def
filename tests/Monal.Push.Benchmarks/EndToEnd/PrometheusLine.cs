using System.Globalization;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>Reads one sample line of the Prometheus text format serve's `/metrics` answers: `name{labels} value`.</summary>
internal static class PrometheusLine
{
    /// <summary>The sample's value (the text after the last space).</summary>
    public static double Value(string line) =>
        double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);

    /// <summary>The value of one label, or null when the line has none of that name.</summary>
    public static string? Label(string line, string label)
    {
        var at = line.IndexOf(label + "=\"", StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var start = at + label.Length + 2;
        return line[start..line.IndexOf('"', start)];
    }
}
