using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Cli.Hosting;
using Monal.Push.Demo.RunningPeers;
using Monal.Push.Demo.Showing;
using Monal.Push.MockApns;
using Npgsql;

namespace Monal.Push.Cli.Demonstrating;

/// <summary>
/// The local stack of `monal-push demo`, started in this order and stopped in reverse: the mock APNs (h2c, checking
/// the provider token against a key generated for the run), a private Prosody with mod_cloud_notify whose component
/// block names our component, and `serve` (the same host and composition as `monal-push serve`, in this process,
/// on the embedded PostgreSQL under the demo's data folder).
/// </summary>
internal sealed class DemoStack : IAsyncDisposable
{
    public const string Module = "monalDemo";
    public const string Topic = "im.monal.demo";
    public const string TeamId = "DEMOTEAM01";
    public const string KeyId = "DEMOKEY001";
    public const string Domain = "localhost";
    public const string ComponentDomain = "push.localhost";

    private readonly FileStream _lock;
    private MockApnsServer? _apns;
    private ProsodyServer? _prosody;
    private MonalHost? _host;
    private HttpClient? _http;

    private DemoStack(string dataPath, FileStream lockFile)
    {
        DataPath = dataPath;
        _lock = lockFile;
    }

    /// <summary>The demo's data folder: the embedded PostgreSQL, serve's logs and master key, Prosody's folder, the APNs key.</summary>
    public string DataPath { get; }

    public MockApnsServer Apns => _apns ?? throw new InvalidOperationException("The mock APNs did not start.");

    public ProsodyServer Prosody => _prosody ?? throw new InvalidOperationException("Prosody did not start.");

    public MonalHost Host => _host ?? throw new InvalidOperationException("serve did not start.");

    /// <summary>A client of serve's HTTP listener (registration API, /health, /metrics).</summary>
    public HttpClient Http => _http ?? throw new InvalidOperationException("serve did not start.");

    public DemoUser Alice { get; } = DemoUser.Create("alice");

    public DemoUser Bob { get; } = DemoUser.Create("bob");

    /// <summary>The ledger's connection string (the embedded cluster's, unless the command line gave one).</summary>
    public string ConnectionString { get; private set; } = "";

    /// <summary>Where the demo keeps its data when the command line names no <c>Data:Path</c>.</summary>
    public static string DefaultDataPath => Path.Combine(Path.GetTempPath(), "monal-push-demo-" + Environment.UserName);

    public static async Task<DemoStack> StartAsync(IReadOnlyList<string> switches, TextWriter output, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(output);
        var commandLine = new ConfigurationBuilder().AddCommandLine([.. switches]).Build();
        var dataPath = Path.GetFullPath(commandLine["Data:Path"] is { Length: > 0 } given ? given : DefaultDataPath);
        Directory.CreateDirectory(dataPath);
        var stack = new DemoStack(dataPath, Lock(dataPath));
        try
        {
            await stack.StartCoreAsync(switches, commandLine, output, ct);
            return stack;
        }
        catch
        {
            await stack.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // serve first, so its component leaves Prosody cleanly and delivery hands back what it claimed; MonalHost then
        // stops the embedded PostgreSQL. Prosody and the mock have nobody left to talk to.
        _http?.Dispose();
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        if (_prosody is not null)
        {
            await _prosody.DisposeAsync();
        }

        if (_apns is not null)
        {
            await _apns.DisposeAsync();
        }

        await _lock.DisposeAsync();
    }

    /// <summary>One demo per data folder: a second one would share (and at its end stop) the first one's PostgreSQL.</summary>
    private static FileStream Lock(string dataPath)
    {
        try
        {
            // FileShare.None takes an exclusive advisory lock (flock) on Linux; it ends with the process.
            return new FileStream(Path.Combine(dataPath, "demo.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new DemoException(
                $"Another `monal-push demo` is running with the data folder {dataPath}. Stop it, or pass another --Data:Path.", e);
        }
    }

    private async Task StartCoreAsync(IReadOnlyList<string> switches, IConfiguration commandLine, TextWriter output, CancellationToken ct)
    {
        StopLeftovers();
        var (keyFile, publicKeyPem) = await WriteProviderKeyAsync(ct);

        _apns = await MockApnsServer.StartAsync(new MockApnsOptions
        {
            UseTls = false,
            Topic = Topic,
            ProviderPublicKeyPem = publicKeyPem,
            KeyId = KeyId,
            TeamId = TeamId,
        }, ct);
        output.WriteLine($"  mock APNs      {_apns.Endpoint} (HTTP/2 without TLS; checks topic, headers and the ES256 provider token)");

        var componentSecret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var started = Stopwatch.StartNew();
        try
        {
            _prosody = await ProsodyServer.StartAsync(new ProsodyOptions
            {
                Domain = Domain,
                ComponentDomain = ComponentDomain,
                ComponentSecret = componentSecret,
                Users = new Dictionary<string, string> { [Alice.Name] = Alice.Password, [Bob.Name] = Bob.Password },
                ParentDirectory = DataPath,
                OwnSession = true,
                Executable = commandLine["Demo:Prosody"] is { Length: > 0 } prosody ? prosody : new ProsodyOptions().Executable,
            }, ct);
        }
        catch (InvalidOperationException e)
        {
            // Not installed (the message says what to install) or did not start (the message carries its log).
            throw new DemoException(e.Message, e);
        }

        output.WriteLine(
            $"  Prosody        c2s 127.0.0.1:{_prosody.ClientPort}, component port 127.0.0.1:{_prosody.ComponentPort} for {ComponentDomain} ({started.ElapsedMilliseconds} ms)");

        // The command line wins over every other source: the demo's own settings go last unless the user gave them,
        // so an operator's appsettings.json or environment (a production database, other ports) is never used here.
        var demo = new List<string>
        {
            $"--Data:Path={DataPath}",
            $"--Xmpp:Component:Host={_prosody.Host}",
            $"--Xmpp:Component:Port={_prosody.ComponentPort}",
            $"--Xmpp:Component:Domain={ComponentDomain}",
            $"--Xmpp:Component:Secret={componentSecret}",
            $"--PushModules:{Module}:Topic={Topic}",
            $"--PushModules:{Module}:Endpoint={_apns.Endpoint}",
            $"--PushModules:{Module}:TeamId={TeamId}",
            $"--PushModules:{Module}:KeyId={KeyId}",
            $"--PushModules:{Module}:KeyFile={keyFile}",
            $"--Registration:PushModule={Module}",
        };
        AddUnlessGiven(demo, commandLine, "ConnectionStrings:Ledger", "");
        AddUnlessGiven(demo, commandLine, "Http:Urls", "http://127.0.0.1:0");
        // The walkthrough is the demo's console output; serve's Information lines still go to its log files.
        AddUnlessGiven(demo, commandLine, "Logging:Console:LogLevel:Default", "Warning");
        // Quartz's clustered store warns at every start that earlier demo processes' scheduler instances are gone.
        AddUnlessGiven(demo, commandLine, "Logging:Console:LogLevel:Quartz", "Error");
        started.Restart();
        _host = await MonalHost.StartAsync([.. switches, .. demo], HostRole.Serve, ct);
        ConnectionString = _host.Services.GetRequiredService<IConfiguration>().GetConnectionString("Ledger") ?? "";
        _http = new HttpClient { BaseAddress = _host.HttpAddress, Timeout = TimeSpan.FromSeconds(30) };
        await WaitUntilReadyAsync(ct);
        var port = new NpgsqlConnectionStringBuilder(ConnectionString).Port;
        output.WriteLine($"  serve          {_host.HttpAddress} (registration API, /health/ready, /metrics), ready after {started.ElapsedMilliseconds} ms");
        output.WriteLine($"  PostgreSQL     127.0.0.1:{port} (embedded cluster under {Path.Combine(DataPath, "postgres")})");
    }

    private static void AddUnlessGiven(List<string> switches, IConfiguration commandLine, string key, string value)
    {
        if (commandLine[key] is null)
        {
            switches.Add($"--{key}={value}");
        }
    }

    /// <summary>A fresh APNs-style .p8 key (EC P-256, PKCS#8) for this run; the mock verifies every JWT with its public half.</summary>
    private async Task<(string Path, string PublicKeyPem)> WriteProviderKeyAsync(CancellationToken ct)
    {
        var folder = Directory.CreateDirectory(Path.Combine(DataPath, "apns"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var path = Path.Combine(folder.FullName, $"AuthKey_{KeyId}.p8");
        await File.WriteAllTextAsync(path, key.ExportPkcs8PrivateKeyPem(), ct);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (path, key.ExportSubjectPublicKeyInfoPem());
    }

    /// <summary>`/health/ready` says 200 once the ledger is migrated, the component link is up and the module loads.</summary>
    private async Task WaitUntilReadyAsync(CancellationToken ct)
    {
        var waited = Stopwatch.StartNew();
        var last = "";
        while (waited.Elapsed < TimeSpan.FromSeconds(60))
        {
            using var response = await Http.GetAsync(new Uri("/health/ready", UriKind.Relative), ct);
            last = await response.Content.ReadAsStringAsync(ct);
            if (response.IsSuccessStatusCode)
            {
                return;
            }

            await Task.Delay(100, ct);
        }

        throw new DemoException($"serve did not become ready within a minute: {last}");
    }

    /// <summary>
    /// A demo killed without its clean stop leaves its Prosody folder (and maybe Prosody) behind. The lock says no
    /// other demo uses this data folder, so whatever Prosody still runs from it is a leftover: stop it, remove the folder.
    /// </summary>
    private void StopLeftovers()
    {
        foreach (var folder in Directory.EnumerateDirectories(DataPath, "monal-prosody-*"))
        {
            var pidFile = Path.Combine(folder, "prosody.pid");
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid)
                && File.Exists($"/proc/{pid}/cmdline") && File.ReadAllText($"/proc/{pid}/cmdline").Contains(folder, StringComparison.Ordinal))
            {
                using var leftover = Process.GetProcessById(pid);
                leftover.Kill();
                leftover.WaitForExit(TimeSpan.FromSeconds(10));
            }

            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: a new Prosody gets a folder of its own anyway.
            }
        }
    }
}
