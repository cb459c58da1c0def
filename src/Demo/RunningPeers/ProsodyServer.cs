using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Monal.Push.Demo.RunningPeers;

/// <summary>
/// A private Prosody 0.12 (Debian 12 package) with mod_cloud_notify, on free loopback ports, with its own config,
/// data folder, pidfile and log file in a temp folder. Started in the foreground (<c>prosody -F</c>) as a child
/// process; as root it runs as the <c>prosody</c> user, because Prosody refuses to run as root
/// ("Danger, Will Robinson!" in mod_posix) unless <c>run_as_root</c> is set.
/// </summary>
public sealed class ProsodyServer : IXmppServer
{
    /// <summary>What to run when Prosody or mod_cloud_notify is missing.</summary>
    public const string InstallHint =
        "Install it as root: `apt-get install -y prosody prosody-modules lua-unbound` (or `.ci/install-peers.sh`, which also installs ejabberd for the tests).";

    private const string ServiceUser = "prosody";
    private const int StartAttempts = 3;

    private readonly ServerProcess process;

    private ProsodyServer(ServerProcess process, DirectoryInfo directory, ProsodyOptions options, int clientPort, int componentPort,
        string componentDomain, string componentSecret)
    {
        this.process = process;
        Directory = directory.FullName;
        Options = options;
        ClientPort = clientPort;
        ComponentPort = componentPort;
        ComponentDomain = componentDomain;
        ComponentSecret = componentSecret;
    }

    public string Name => "Prosody";

    /// <summary>The server's process id (the pid of prosody itself: setpriv and setsid exec it).</summary>
    public int ProcessId => process.Id;

    public string Host => "127.0.0.1";

    public int ClientPort { get; }

    public int ComponentPort { get; }

    public string Domain => Options.Domain;

    public string ComponentDomain { get; }

    public string ComponentSecret { get; }

    public string LogFile => Path.Combine(Directory, "prosody.log");

    public string ConfigFile => Path.Combine(Directory, "prosody.cfg.lua");

    /// <summary>The private folder (config, data, log, pidfile); deleted on dispose unless MONAL_E2E_KEEP_SERVER_DIRS is set.</summary>
    public string Directory { get; }

    public ProsodyOptions Options { get; }

    /// <summary>From process start until both ports were active and accepted connections.</summary>
    public TimeSpan StartupTime { get; private set; }

    /// <summary>Writes the config, creates the users, starts Prosody and waits until its ports are up.</summary>
    /// <exception cref="InvalidOperationException">Prosody is not installed (the message names .ci/install-peers.sh) or did not start.</exception>
    public static async Task<ProsodyServer> StartAsync(ProsodyOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ProsodyOptions();
        if (!File.Exists(options.Executable))
        {
            throw new InvalidOperationException($"Prosody is not installed: {options.Executable} does not exist. {InstallHint}");
        }

        if (!File.Exists("/usr/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua") && options.Executable == "/usr/bin/prosody")
        {
            throw new InvalidOperationException($"mod_cloud_notify (Debian package prosody-modules) is not installed. {InstallHint}");
        }

        var componentDomain = options.ComponentDomain ?? "push." + options.Domain;
        var componentSecret = options.ComponentSecret ?? Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var failures = new StringBuilder();
        for (var attempt = 1; attempt <= StartAttempts; attempt++)
        {
            var directory = ServerProcess.CreatePrivateDirectory("monal-prosody-", options.ParentDirectory);
            var clientPort = ServerProcess.FreeLoopbackPort();
            var componentPort = ServerProcess.FreeLoopbackPort();
            System.IO.Directory.CreateDirectory(Path.Combine(directory.FullName, "data"));
            System.IO.Directory.CreateDirectory(Path.Combine(directory.FullName, "certs"));
            var config = BuildConfig(directory.FullName, options, clientPort, componentPort, componentDomain, componentSecret);
            await File.WriteAllTextAsync(Path.Combine(directory.FullName, "prosody.cfg.lua"), config, cancellationToken);
            foreach (var (user, password) in options.Users)
            {
                await WriteAccountAsync(directory.FullName, options.Domain, user, password, cancellationToken);
            }

            await ServerProcess.GiveToAsync(directory.FullName, ServiceUser, cancellationToken);

            var stopwatch = Stopwatch.StartNew();
            var child = ServerProcess.Start(
                options.Executable,
                ["--config", Path.Combine(directory.FullName, "prosody.cfg.lua"), "-F"],
                ServiceUser,
                directory.FullName,
                ownSession: options.OwnSession);
            var server = new ProsodyServer(child, directory, options, clientPort, componentPort, componentDomain, componentSecret);
            var started = await ServerProcess.SettleStartAsync(
                server, () => server.WaitUntilReadyAsync(options.StartTimeout, cancellationToken), server.ReadLog, failures, attempt);
            if (started == StartAttempt.Ready)
            {
                server.StartupTime = stopwatch.Elapsed;
                return server;
            }

            if (started == StartAttempt.Failed)
            {
                break;
            }
        }

        throw new InvalidOperationException($"Prosody did not start.{Environment.NewLine}{failures}");
    }

    public string ReadLog() => process.Describe(LogFile);

    /// <summary>
    /// Writes the account straight into Prosody's internal storage (<c>data/HOST/accounts/USER.dat</c>, the format
    /// <c>authentication = "internal_plain"</c> reads on every login), so it works before and while Prosody runs
    /// and costs no prosodyctl start-up.
    /// </summary>
    public async Task CreateUserAsync(string user, string password, CancellationToken cancellationToken = default)
    {
        await WriteAccountAsync(Directory, Domain, user, password, cancellationToken);
        await ServerProcess.GiveToAsync(Path.Combine(Directory, "data"), ServiceUser, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await process.DisposeAsync();
        ServerProcess.DeleteDirectory(Directory);
    }

    internal static string BuildConfig(string directory, ProsodyOptions options, int clientPort, int componentPort,
        string componentDomain, string componentSecret)
    {
        var pushMaxErrors = options.PushMaxErrors is { } max ? $"push_max_errors = {max}\n" : "";
        return $$"""
            -- Private instance written by Monal.Push.Demo ProsodyServer (tests and `monal-push demo`; see docs/peers.md).
            pidfile = {{Lua(Path.Combine(directory, "prosody.pid"))}}
            data_path = {{Lua(Path.Combine(directory, "data"))}}
            certificates = {{Lua(Path.Combine(directory, "certs"))}}
            log = { { levels = { min = "debug" }, to = "file", filename = {{Lua(Path.Combine(directory, "prosody.log"))}} } }

            -- Loopback only, on the ports chosen for this instance; no s2s, no direct TLS, no HTTP.
            interfaces = { "127.0.0.1" }
            local_interfaces = { "127.0.0.1" }
            c2s_interfaces = { "127.0.0.1" }
            component_interfaces = { "127.0.0.1" }
            c2s_ports = { {{clientPort}} }
            component_ports = { {{componentPort}} }
            c2s_direct_tls_ports = { }
            legacy_ssl_ports = { }
            modules_disabled = { "s2s", "s2s_auth_certs" }

            -- No mod_limits (Debian's default config loads it and it throttles test floods).
            modules_enabled = { "roster", "saslauth", "disco", "ping", "offline", "cloud_notify" }

            -- Plain-text c2s with PLAIN: test clients speak no TLS.
            c2s_require_encryption = false
            allow_unencrypted_plain_auth = true
            authentication = "internal_plain"
            storage = "internal"

            push_notification_with_body = {{Lua(options.PushWithBody)}}
            push_notification_with_sender = {{Lua(options.PushWithSender)}}
            {{pushMaxErrors}}
            VirtualHost {{Lua(options.Domain)}}

            Component {{Lua(componentDomain)}}
                component_secret = {{Lua(componentSecret)}}

            """;
    }

    private static async Task WriteAccountAsync(string directory, string domain, string user, string password,
        CancellationToken cancellationToken)
    {
        var accounts = Path.Combine(directory, "data", Encode(domain), "accounts");
        System.IO.Directory.CreateDirectory(accounts);
        var file = Path.Combine(accounts, Encode(user.ToLowerInvariant()) + ".dat");
        await File.WriteAllTextAsync(file, $"return {{\n\t[\"password\"] = {Lua(password)};\n}};\n", cancellationToken);
    }

    /// <summary>Prosody's datamanager file-name encoding: every byte that is not [A-Za-z0-9] becomes %xx.</summary>
    private static string Encode(string name)
    {
        var builder = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(name))
        {
            if (b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9'))
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append(CultureInfo.InvariantCulture, $"%{b:x2}");
            }
        }

        return builder.ToString();
    }

    private static string Lua(bool value) => value ? "true" : "false";

    /// <summary>A Lua string literal: printable ASCII as is, everything else as a decimal byte escape.</summary>
    private static string Lua(string value)
    {
        var builder = new StringBuilder("\"");
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            if (b is >= 0x20 and < 0x7f && b != '"' && b != '\\')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\{b:D3}");
            }
        }

        return builder.Append('"').ToString();
    }

    /// <summary>Null when ready; otherwise why not ("port clash…" means: retry on other ports).</summary>
    private async Task<string?> WaitUntilReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var c2sActive = $"Activated service 'c2s' on [127.0.0.1]:{ClientPort}";
        var componentActive = $"Activated service 'component' on [127.0.0.1]:{ComponentPort}";
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var log = File.Exists(LogFile) ? ServerProcess.ReadShared(LogFile) : "";
            if (log.Contains("Failed to open server port", StringComparison.Ordinal))
            {
                return "port clash: " + log.Split('\n').First(l => l.Contains("Failed to open server port", StringComparison.Ordinal));
            }

            if (process.HasExited)
            {
                return $"prosody exited with code {process.ExitCode}";
            }

            if (log.Contains(c2sActive, StringComparison.Ordinal) && log.Contains(componentActive, StringComparison.Ordinal)
                && await ServerProcess.AcceptsConnectionsAsync(ClientPort, cancellationToken)
                && await ServerProcess.AcceptsConnectionsAsync(ComponentPort, cancellationToken))
            {
                return null;
            }

            await Task.Delay(20, cancellationToken);
        }

        return $"not ready after {timeout}";
    }
}
