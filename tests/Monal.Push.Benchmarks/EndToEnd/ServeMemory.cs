using System.Globalization;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// What holds serve's memory at the end of a phase: its resident set beside the garbage collector's view, read from
/// the runtime's own series on serve's `/metrics` (the System.Runtime meter): the memory the collector had committed
/// and the heap it left, by generation, at its last collection, and the free space inside that heap. The resident
/// set beyond the committed memory is the runtime itself (compiled code, native libraries, stacks, buffers).
/// </summary>
internal static class ServeMemory
{
    private const string Committed = "dotnet_gc_last_collection_memory_committed_size";
    private const string Heap = "dotnet_gc_last_collection_heap_size";
    private const string Fragmentation = "dotnet_gc_last_collection_heap_fragmentation_size";
    private const double MiB = 1024 * 1024;

    public static string Describe(string scrape, long rss, (long Anonymous, long Files) parts)
    {
        double committed = 0, fragmentation = 0;
        var generations = new List<(string Name, double Bytes)>();
        foreach (var line in PrometheusLine.Samples(scrape))
        {
            var value = PrometheusLine.Value(line);
            if (PrometheusLine.IsSeries(line, Committed))
            {
                committed = value;
            }
            else if (PrometheusLine.IsSeries(line, Fragmentation))
            {
                fragmentation += value;
            }
            else if (PrometheusLine.IsSeries(line, Heap))
            {
                generations.Add((PrometheusLine.Label(line, "gc_heap_generation") ?? "?", value));
            }
        }

        if (committed == 0)
        {
            return "";
        }

        var heap = generations.Sum(g => g.Bytes);
        return string.Create(CultureInfo.InvariantCulture,
            $"RSS {rss / MiB:N0} MiB = GC committed {committed / MiB:N0} MiB (heap after the last collection {heap / MiB:N0} MiB: " +
            $"{string.Join(", ", generations.Select(g => $"{g.Name} {g.Bytes / MiB:N1}"))}; free inside it {fragmentation / MiB:N0} MiB) " +
            $"+ {(rss - committed) / MiB:N0} MiB outside the GC heap (runtime, compiled code, native libraries, stacks, buffers); " +
            $"by kind: anonymous {parts.Anonymous / MiB:N0} MiB, mapped files {parts.Files / MiB:N0} MiB");
    }
}
