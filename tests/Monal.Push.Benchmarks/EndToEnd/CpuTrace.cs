using System.Diagnostics;
using System.Globalization;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// `--trace FILE`: a CPU-sampling profile of `serve` during the closed-loop phase, written by dotnet-trace
/// (`dotnet tool install -g dotnet-trace`) in speedscope format. Costs some CPU itself: never in the reported run.
/// </summary>
internal sealed class CpuTrace(Process process) : IAsyncDisposable
{
    public static CpuTrace? Start(int pid, TimeSpan duration, string output)
    {
        var tool = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "dotnet-trace");
        if (!File.Exists(tool))
        {
            Console.Error.WriteLine("--trace: dotnet-trace not found; install it with: dotnet tool install -g dotnet-trace");
            return null;
        }

        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])["collect", "-p", pid.ToString(CultureInfo.InvariantCulture), "--profile", "dotnet-sampled-thread-time,gc-collect",
                     "--duration", duration.ToString(@"dd\:hh\:mm\:ss", CultureInfo.InvariantCulture), "--format", "speedscope", "-o", output])
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info);
        return process is null ? null : new CpuTrace(process);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Console.WriteLine($"  dotnet-trace exited {process.ExitCode}: {(await stdout).Trim().Split('\n').LastOrDefault()} {(await stderr).Trim()}");
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
        }

        process.Dispose();
    }
}
