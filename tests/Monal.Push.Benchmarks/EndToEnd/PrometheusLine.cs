using System.Globalization;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>Reads one sample line of the Prometheus text format serve's `/metrics` answers: `name{labels} value`.</summary>
internal static class PrometheusLine
{
    /// <summary>The sample lines of a scrape: every line but comments (`# HELP`, `# TYPE`) and blank ones.</summary>
    public static IEnumerable<string> Samples(string scrape) =>
        scrape.Split('\n').Where(line => line.Length > 0 && !line.StartsWith('#'));

    /// <summary>True when the sample belongs to the series <paramref name="name"/> exactly (not one whose name starts with it).</summary>
    public static bool IsSeries(string line, string name) =>
        line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] is '{' or ' ';

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
