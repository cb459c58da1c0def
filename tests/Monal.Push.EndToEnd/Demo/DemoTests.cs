using System.Diagnostics;
using System.Text;
using Monal.Push.Cli.Demonstrating;
using Npgsql;

namespace Monal.Push.EndToEnd.Demo;

/// <summary>
/// `monal-push demo` (issue 9, item 7): the whole local stack shows one push end to end, prints the walkthrough and
/// leaves no Prosody or PostgreSQL behind, whether it stops by itself (--once) or on Ctrl-C.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class DemoTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private readonly string _dataPath = Directory.CreateTempSubdirectory("monal-demo-test-").FullName;
    private readonly string _workingDirectory = Directory.CreateTempSubdirectory("monal-demo-cwd-").FullName;

    public DemoTests() =>
        // As root, PostgreSQL and Prosody run as their own users and must be able to enter the data folder.
        File.SetUnixFileMode(_dataPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);

    [Fact]
    public async Task Demo_Should_DeliverExactlyOnePushToTheMockAndStopEverything_When_RunInProcess()
    {
        var output = new StringWriter();
        int prosodyPid;
        string token;
        await using (var stack = await DemoStack.StartAsync([$"--Data:Path={_dataPath}"], output, CancellationToken.None))
        {
            await DemoRunner.RunAsync(stack, once: true, output, TextReader.Null, CancellationToken.None);

            var request = Assert.Single(stack.Apns.Requests);
            token = request.DeviceToken!;
            Assert.Equal(DemoStack.Topic, request.Header("apns-topic"));
            Assert.Equal("alert", request.Header("apns-push-type"));
            Assert.Equal(200, request.Status);
            Assert.True(request.ProviderToken?.SignatureValid, "the JWT verifies with the demo key's public half");
            // The push the mock received is the one the ledger recorded as delivered.
            await using var dataSource = NpgsqlDataSource.Create(stack.ConnectionString);
            await using var cmd = dataSource.CreateCommand("select outcome from push_log where push_id = $1");
            cmd.Parameters.Add(new() { Value = Guid.Parse(request.Header("apns-id")!) });
            Assert.Equal("delivered", await cmd.ExecuteScalarAsync());
            prosodyPid = stack.Prosody.ProcessId;
        }

        var text = output.ToString();
        Assert.Contains("push 1 reached the mock APNs", text, StringComparison.Ordinal);
        Assert.Contains("outcome delivered", text, StringComparison.Ordinal);
        Assert.Contains(DemoRunner.WalkthroughTitle, text, StringComparison.Ordinal);
        Assert.DoesNotContain(token, text, StringComparison.OrdinalIgnoreCase);
        Assert.False(Directory.Exists($"/proc/{prosodyPid}"), "Prosody was stopped");
        Assert.Empty(ProcessesUsing(_dataPath));
        Assert.False(File.Exists(Path.Combine(_dataPath, "postgres", "pgdata", "postmaster.pid")), "the embedded PostgreSQL was stopped");
    }

    [Fact]
    public async Task Demo_Should_ExitZeroAndLeaveNoProcesses_When_TheExecutableRunsOnce()
    {
        await using var demo = DemoProcess.Start(_dataPath, _workingDirectory, "--once");

        var exitCode = await demo.WaitForExitAsync(Patience);

        Assert.True(exitCode == 0, $"exit code {exitCode}:\n{demo.Output}");
        Assert.Contains("push 1 reached the mock APNs", demo.Output, StringComparison.Ordinal);
        Assert.Contains(DemoRunner.WalkthroughTitle, demo.Output, StringComparison.Ordinal);
        Assert.Contains("monal-push demo: stopped.", demo.Output, StringComparison.Ordinal);
        Assert.Empty(ProcessesUsing(_dataPath));
    }

    [Fact]
    public async Task Demo_Should_PushOnEnterAndStopCleanly_When_InterruptedWithCtrlC()
    {
        await using var demo = DemoProcess.Start(_dataPath, _workingDirectory);
        await demo.WaitForOutputAsync(DemoRunner.WalkthroughTitle, Patience);
        Assert.NotEmpty(ProcessesUsing(_dataPath));

        await demo.PressEnterAsync();
        await demo.WaitForOutputAsync("push 2 reached the mock APNs", Patience);
        demo.Interrupt();
        var exitCode = await demo.WaitForExitAsync(Patience);

        Assert.True(exitCode == 0, $"exit code {exitCode}:\n{demo.Output}");
        Assert.Contains("monal-push demo: stopped.", demo.Output, StringComparison.Ordinal);
        Assert.Empty(ProcessesUsing(_dataPath));
    }

    [Fact]
    public async Task Demo_Should_FailNamingThePackagesToInstall_When_ProsodyIsMissing()
    {
        var output = new StringWriter();
        var error = new StringWriter();

        var exitCode = await Cli.Commands.DemoCommand.RunAsync(
            [$"--Data:Path={_dataPath}", "--Demo:Prosody=/nonexistent/prosody"], once: true, output, error, TextReader.Null, CancellationToken.None);

        Assert.Equal(1, exitCode);
        Assert.Contains("apt-get install -y prosody prosody-modules lua-unbound", error.ToString(), StringComparison.Ordinal);
        Assert.Empty(ProcessesUsing(_dataPath));
    }

    public void Dispose()
    {
        foreach (var folder in (string[])[_dataPath, _workingDirectory])
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: the folders are in the temp folder.
            }
        }
    }

    /// <summary>
    /// Processes whose command line names the folder: Prosody runs from a folder under it (`--config …`), the
    /// PostgreSQL postmaster from its data directory (`-D …`). A backend ends with its postmaster.
    /// </summary>
    private static List<string> ProcessesUsing(string folder)
    {
        var found = new List<string>();
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                var commandLine = File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' ');
                if (commandLine.Contains(folder, StringComparison.Ordinal))
                {
                    found.Add($"{pid}: {commandLine}");
                }
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
            catch (UnauthorizedAccessException)
            {
                // Not ours to read.
            }
        }

        return found;
    }

    /// <summary>The built `monal-push demo` as a child process, its output collected.</summary>
    private sealed class DemoProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();

        private DemoProcess(Process process) => _process = process;

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public static DemoProcess Start(string dataPath, string workingDirectory, params string[] arguments)
        {
            // A test runner may have been started with SIGINT ignored (a background job), and the child would inherit
            // that: env restores the default so the demo's own Ctrl-C handling is what the test exercises.
            var info = new ProcessStartInfo("env")
            {
                WorkingDirectory = workingDirectory,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in (string[])["--default-signal=INT", "dotnet", Path.Combine(AppContext.BaseDirectory, "monal-push.dll"),
                "demo", $"--Data:Path={dataPath}", .. arguments])
            {
                info.ArgumentList.Add(argument);
            }

            var process = new Process { StartInfo = info };
            var demo = new DemoProcess(process);
            process.OutputDataReceived += (_, e) => demo.Append(e.Data);
            process.ErrorDataReceived += (_, e) => demo.Append(e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return demo;
        }

        public async Task WaitForOutputAsync(string text, TimeSpan timeout)
        {
            var waited = Stopwatch.StartNew();
            while (!Output.Contains(text, StringComparison.Ordinal))
            {
                if (_process.HasExited || waited.Elapsed > timeout)
                {
                    throw new TimeoutException($"No \"{text}\" in the demo's output:\n{Output}");
                }

                await Task.Delay(100);
            }
        }

        public async Task PressEnterAsync()
        {
            await _process.StandardInput.WriteLineAsync();
            await _process.StandardInput.FlushAsync();
        }

        /// <summary>What Ctrl-C in a terminal sends.</summary>
        public void Interrupt()
        {
            using var kill = Process.Start("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            kill.WaitForExit();
        }

        public async Task<int> WaitForExitAsync(TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            await _process.WaitForExitAsync(cts.Token);
            return _process.ExitCode;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
        }

        private void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}
