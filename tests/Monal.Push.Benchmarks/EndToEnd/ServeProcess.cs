using System.Diagnostics;
using System.Globalization;
using Monal.Push.Benchmarks.Support;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// `monal-push serve` as a child process (the Release build under src/Cli/bin), its output in a log file, its CPU time
/// and peak resident memory read from /proc. Disposing stops it: SIGTERM, then a kill after a grace period.
/// </summary>
internal sealed class ServeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Task _pumps;

    private ServeProcess(Process process, StreamWriter log, Task pumps, string logPath)
    {
        _process = process;
        _log = log;
        _pumps = pumps;
        LogPath = logPath;
    }

    public int Id => _process.Id;

    public string LogPath { get; }

    public bool HasExited => _process.HasExited;

    public Task Exited => _process.WaitForExitAsync();

    public static ServeProcess Start(
        string dll, IEnumerable<string> switches, IReadOnlyDictionary<string, string> environment, string workingDirectory, string logPath)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        info.ArgumentList.Add("serve");
        foreach (var s in switches)
        {
            info.ArgumentList.Add(s);
        }

        info.Environment["DOTNET_ENVIRONMENT"] = "Production";
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException("Could not start dotnet.");
        var log = new StreamWriter(logPath) { AutoFlush = true };
        var gate = new Lock();
        async Task PumpAsync(StreamReader reader)
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                lock (gate)
                {
                    log.WriteLine(line);
                }
            }
        }

        var pumps = Task.WhenAll(PumpAsync(process.StandardOutput), PumpAsync(process.StandardError));
        return new ServeProcess(process, log, pumps, logPath);
    }

    /// <summary>User + system CPU time so far (/proc/&lt;pid&gt;/stat fields 14 and 15).</summary>
    public TimeSpan CpuTime() => ProcStat.Read(Id).Cpu;

    /// <summary>Peak resident set (VmHWM) in bytes since start or since <see cref="ResetPeakRss"/>.</summary>
    public long PeakRss() => StatusKb("VmHWM:") * 1024;

    public long Rss() => StatusKb("VmRSS:") * 1024;

    /// <summary>
    /// The resident set's parts: anonymous memory (heaps, stacks) and pages of mapped files (the runtime's and the
    /// framework's images, clean and shared with other .NET processes, which the kernel can drop and reread).
    /// </summary>
    public (long Anonymous, long Files) RssParts() => (StatusKb("RssAnon:") * 1024, StatusKb("RssFile:") * 1024);

    /// <summary>Open file descriptors (sockets included): a leak shows as growth over a soak.</summary>
    public int OpenHandles() => Directory.GetFileSystemEntries($"/proc/{Id}/fd").Length;

    public int Threads() => (int)StatusKb("Threads:");

    /// <summary>Resets VmHWM to the current RSS (writing 5 to clear_refs, Linux 4.0+); false when not allowed.</summary>
    public bool ResetPeakRss()
    {
        try
        {
            File.WriteAllText($"/proc/{Id}/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public async Task<string> TailAsync(int lines)
    {
        await Task.Yield();
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var all = (await reader.ReadToEndAsync()).Split('\n');
            return string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException)
        {
            return "";
        }
    }

    private long StatusKb(string key)
    {
        foreach (var line in File.ReadLines($"/proc/{Id}/status"))
        {
            if (line.StartsWith(key, StringComparison.Ordinal))
            {
                return long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                using var kill = Process.Start("kill", ["-TERM", Id.ToString(CultureInfo.InvariantCulture)]);
                await kill.WaitForExitAsync();
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // Did not stop in time (or is gone already).
            }

            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }

        try
        {
            await _pumps.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
            // The pipes stay open only if a grandchild inherited them; the log is complete enough.
        }

        await _log.DisposeAsync();
        _process.Dispose();
    }
}
