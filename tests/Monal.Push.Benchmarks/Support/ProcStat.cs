using System.Globalization;

namespace Monal.Push.Benchmarks.Support;

/// <summary>A process's parent and CPU times from /proc/&lt;pid&gt;/stat.</summary>
internal readonly record struct ProcStat(int ParentId, TimeSpan Cpu, TimeSpan ReapedChildrenCpu)
{
    // Linux reports CPU times in clock ticks of USER_HZ, which is 100 on every architecture .NET runs on.
    private const double ClockTicksPerSecond = 100;

    /// <summary>Reads the process's stat line; throws IOException when the process is gone.</summary>
    public static ProcStat Read(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // After "pid (comm) ", field 3 (state) is index 0: ppid (4) is 1, utime (14) and stime (15) are 11 and 12,
        // cutime (16) and cstime (17), the CPU of children it has waited for, 13 and 14.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return new ProcStat(
            int.Parse(fields[1], CultureInfo.InvariantCulture),
            Ticks(fields[11], fields[12]),
            Ticks(fields[13], fields[14]));
    }

    private static TimeSpan Ticks(string a, string b) => TimeSpan.FromSeconds(
        (long.Parse(a, CultureInfo.InvariantCulture) + long.Parse(b, CultureInfo.InvariantCulture)) / ClockTicksPerSecond);
}
