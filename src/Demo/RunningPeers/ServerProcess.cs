using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Monal.Push.Demo.RunningPeers;

/// <summary>
/// A server child process: started (as a service user when we are root), its output captured, stopped with
/// SIGTERM and then SIGKILL. Shared by <see cref="ProsodyServer"/> and the tests' ejabberd launcher.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    internal const string InstallHint = "Run `.ci/install-peers.sh` as root (it installs prosody, prosody-modules and ejabberd).";

    private const int SigTerm = 15;

    private readonly Process process;
    private readonly StringBuilder output = new();

    private ServerProcess(Process process) => this.process = process;

    public int Id => process.Id;

    public bool HasExited => process.HasExited;

    public int? ExitCode => process.HasExited ? process.ExitCode : null;

    public string Output
    {
        get
        {
            lock (output)
            {
                return output.ToString();
            }
        }
    }

    /// <summary>
    /// Starts <paramref name="fileName"/>. When this process is root and <paramref name="runAsUser"/> is given, the
    /// child runs as that user through <c>setpriv</c>, which execs (unlike runuser/su it does not stay as a
    /// parent), so the pid we hold is the server itself and SIGTERM reaches it. With <paramref name="ownSession"/> it
    /// runs through <c>setsid</c> first, which execs too (our child is no process group leader, so it need not fork):
    /// the server leaves our terminal's process group, and a Ctrl-C there reaches only us.
    /// </summary>
    public static ServerProcess Start(
        string fileName,
        IEnumerable<string> arguments,
        string? runAsUser,
        string workingDirectory,
        IReadOnlyDictionary<string, string>? environment = null,
        bool ownSession = false)
    {
        var info = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        var command = new List<string>();
        if (ownSession)
        {
            command.Add("setsid");
        }

        if (runAsUser is not null && Environment.IsPrivilegedProcess)
        {
            command.AddRange(["setpriv", $"--reuid={runAsUser}", $"--regid={runAsUser}", "--init-groups"]);
        }

        command.Add(fileName);
        info.FileName = command[0];
        foreach (var part in command.Skip(1))
        {
            info.ArgumentList.Add(part);
        }

        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var server = new ServerProcess(process);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>SIGTERM, wait up to <paramref name="grace"/>, then SIGKILL the whole tree.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (process.HasExited)
        {
            return;
        }

        // A failure (ESRCH) only means it ended between the check and the signal.
        _ = Kill(process.Id, SigTerm);

        using var cts = new CancellationTokenSource(grace);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(10));
        process.Dispose();
    }

    /// <summary>A port that was free on 127.0.0.1 a moment ago (callers retry on the rare clash).</summary>
    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static async Task<bool> AcceptsConnectionsAsync(int port, CancellationToken cancellationToken)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>A folder only we (and the service user, when root) can enter: in the temp folder, or in <paramref name="parent"/>.</summary>
    public static DirectoryInfo CreatePrivateDirectory(string prefix, string? parent = null)
    {
        if (parent is null)
        {
            return Directory.CreateTempSubdirectory(prefix);
        }

        Directory.CreateDirectory(parent);
        return Directory.CreateDirectory(
            Path.Combine(parent, prefix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))),
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>Gives <paramref name="path"/> to the service user when we are root (the server must write there).</summary>
    public static async Task GiveToAsync(string path, string user, CancellationToken cancellationToken)
    {
        if (Environment.IsPrivilegedProcess)
        {
            await RunToolAsync("chown", ["-R", $"{user}:{user}", path], cancellationToken);
        }
    }

    /// <summary>
    /// Waits for one start attempt of a server: <see cref="StartAttempt.Ready"/>, or the server is disposed, its log
    /// added to <paramref name="failures"/>, and the attempt is <see cref="StartAttempt.PortClash"/> (try other ports)
    /// or <see cref="StartAttempt.Failed"/>. <paramref name="waitUntilReady"/> answers null when ready, otherwise why
    /// not ("port clash…" for a taken port).
    /// </summary>
    public static async Task<StartAttempt> SettleStartAsync(
        IAsyncDisposable server, Func<Task<string?>> waitUntilReady, Func<string> readLog, StringBuilder failures, int attempt)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(waitUntilReady);
        ArgumentNullException.ThrowIfNull(readLog);
        ArgumentNullException.ThrowIfNull(failures);
        string? outcome;
        try
        {
            outcome = await waitUntilReady();
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        if (outcome is null)
        {
            return StartAttempt.Ready;
        }

        failures.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"attempt {attempt}: {outcome}").AppendLine(readLog());
        await server.DisposeAsync();
        return outcome.StartsWith("port clash", StringComparison.Ordinal) ? StartAttempt.PortClash : StartAttempt.Failed;
    }

    /// <summary>A server's log file (read while the server may still write it) and this process's captured output.</summary>
    public string Describe(string logFile)
    {
        var log = File.Exists(logFile) ? ReadShared(logFile) : "(no log file)";
        return $"--- {logFile} ---{Environment.NewLine}{log}--- stdout/stderr ---{Environment.NewLine}{Output}";
    }

    /// <summary>A file another process is writing, read whole.</summary>
    public static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public static void DeleteDirectory(string path)
    {
        if (Environment.GetEnvironmentVariable("MONAL_E2E_KEEP_SERVER_DIRS") is { Length: > 0 })
        {
            return;
        }

        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
            // A late write by a dying server; the folder is in /tmp and harmless.
        }
        catch (UnauthorizedAccessException)
        {
            // Likewise.
        }
    }

    private static async Task RunToolAsync(string tool, string[] arguments, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {tool}.");
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', arguments)} failed ({process.ExitCode}): {await stderr}");
        }
    }

    /// <summary>kill(2): .NET can only SIGKILL a child, but both servers shut down cleanly on SIGTERM.</summary>
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Kill(int pid, int signal);

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }
}

/// <summary>How one start attempt of a server ended.</summary>
internal enum StartAttempt
{
    Ready,
    PortClash,
    Failed,
}
