namespace Monal.Push.Benchmarks.Support;

/// <summary>The 1/5/15-minute load average (the machine is shared; every table notes it).</summary>
internal static class LoadAverage
{
    public static string Now()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
