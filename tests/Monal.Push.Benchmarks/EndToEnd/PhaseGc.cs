using System.Globalization;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// The garbage collections during a phase, in serve (the System.Runtime meter's `dotnet.gc.collections` and
/// `dotnet.gc.pause.time` on its `/metrics`, scraped before and after) and in the benchmark process itself (whose
/// pauses delay reading replies, and so are charged to the latencies as well): how many, and how long everything
/// stood still in all, and what serve allocated a publish (`dotnet.gc.heap.total_allocated`). A tail that GC pauses
/// make shows here.
/// </summary>
internal static class PhaseGc
{
    private const string Collections = "dotnet_gc_collections";
    private const string PauseTime = "dotnet_gc_pause_time";
    private const string Allocated = "dotnet_gc_heap_total_allocated";

    /// <summary>The benchmark process's own count and pause so far.</summary>
    public static (int Collections, TimeSpan Paused) Rig() => (GC.CollectionCount(0), GC.GetTotalPauseDuration());

    public static string Describe(
        string? scrapeBefore, string? scrapeAfter, (int Collections, TimeSpan Paused) rigBefore, TimeSpan phase, long publishes)
    {
        var (rigCollections, rigPaused) = Rig();
        var rig = string.Create(CultureInfo.InvariantCulture,
            $"benchmark process {rigCollections - rigBefore.Collections:N0} collections, paused {(rigPaused - rigBefore.Paused).TotalMilliseconds:N0} ms");
        if (scrapeBefore is null || scrapeAfter is null)
        {
            return rig;
        }

        var before = Read(scrapeBefore);
        var after = Read(scrapeAfter);
        if (after.Pause == 0 && after.ByGeneration.Count == 0)
        {
            return rig;
        }

        var generations = after.ByGeneration
            .Select(g => (g.Key, Count: g.Value - before.ByGeneration.GetValueOrDefault(g.Key)))
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => $"{g.Key} {g.Count:N0}");
        var paused = after.Pause - before.Pause;
        var allocated = after.Allocated - before.Allocated;
        var perPublish = publishes > 0 && allocated > 0 ? string.Create(CultureInfo.InvariantCulture, $", allocated {allocated / publishes / 1024:N1} KiB a publish") : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"serve {string.Join(", ", generations)}, paused {paused * 1000:N0} ms in all ({paused / phase.TotalSeconds:P1} of the phase){perPublish}; {rig}");
    }

    private static (Dictionary<string, double> ByGeneration, double Pause, double Allocated) Read(string scrape)
    {
        var byGeneration = new Dictionary<string, double>(StringComparer.Ordinal);
        double pause = 0, allocated = 0;
        foreach (var line in PrometheusLine.Samples(scrape))
        {
            if (PrometheusLine.IsSeries(line, Collections))
            {
                var generation = PrometheusLine.Label(line, "gc_heap_generation") ?? "?";
                byGeneration[generation] = byGeneration.GetValueOrDefault(generation) + PrometheusLine.Value(line);
            }
            else if (PrometheusLine.IsSeries(line, PauseTime))
            {
                pause += PrometheusLine.Value(line);
            }
            else if (PrometheusLine.IsSeries(line, Allocated))
            {
                allocated += PrometheusLine.Value(line);
            }
        }

        return (byGeneration, pause, allocated);
    }
}
