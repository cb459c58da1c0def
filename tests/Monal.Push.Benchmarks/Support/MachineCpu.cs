using System.Globalization;

namespace Monal.Push.Benchmarks.Support;

/// <summary>
/// The whole machine's CPU time from the first line of /proc/stat: what every process spent (busy) and what was left
/// (idle and waiting for I/O), over all cores. A phase's difference says whether the cores were the limit.
/// </summary>
internal readonly record struct MachineCpu(TimeSpan Busy, TimeSpan Idle)
{
    // USER_HZ, as in ProcStat.
    private const double ClockTicksPerSecond = 100;

    public static MachineCpu Read()
    {
        // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is already in user and nice).
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var ticks = fields.Skip(1).Take(8).Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        var idle = ticks[3] + ticks[4];
        return new MachineCpu(Seconds(ticks.Sum() - idle), Seconds(idle));
    }

    public static MachineCpu operator -(MachineCpu a, MachineCpu b) => new(a.Busy - b.Busy, a.Idle - b.Idle);

    /// <summary>The share of all cores that was busy.</summary>
    public double BusyShare => Busy + Idle > TimeSpan.Zero ? Busy / (Busy + Idle) : 0;

    private static TimeSpan Seconds(long ticks) => TimeSpan.FromSeconds(ticks / ClockTicksPerSecond);
}
