using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text;
using Monal.Push.Demo.RunningPeers;

namespace Monal.Push.EndToEnd.Servers;

/// <summary>
/// A private ejabberd 23.01 (Debian 12 package) with mod_push, on free loopback ports, with its own config, Mnesia
/// spool and log folder in a temp folder. It runs <c>erl … -s ejabberd -noinput</c> directly (what
/// <c>ejabberdctl foreground</c> runs) WITHOUT Erlang distribution: no node name, no cookie, no epmd, no
/// distribution port, so it can never clash with a system ejabberd (<c>ejabberd@localhost</c>) or another test
/// instance. As root it runs as the <c>ejabberd</c> user. Accounts are created through mod_http_api on a loopback
/// port (~30 ms each) instead of <c>ejabberdctl register</c> (~1 s each, and it needs distribution).
/// </summary>
public sealed class EjabberdServer : IXmppServer
{
    private const string ServiceUser = "ejabberd";
    private const int StartAttempts = 3;

    private readonly ServerProcess process;
    private readonly HttpClient http;

    private EjabberdServer(ServerProcess process, DirectoryInfo directory, EjabberdOptions options, int clientPort, int componentPort,
        int httpPort, string componentDomain, string componentSecret)
    {
        this.process = process;
        Directory = directory.FullName;
        Options = options;
        ClientPort = clientPort;
        ComponentPort = componentPort;
        HttpPort = httpPort;
        ComponentDomain = componentDomain;
        ComponentSecret = componentSecret;
        http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}/"), Timeout = TimeSpan.FromSeconds(10) };
    }

    public string Name => "ejabberd";

    public string Host => "127.0.0.1";

    public int ClientPort { get; }

    public int ComponentPort { get; }

    /// <summary>mod_http_api (<c>/api</c>), open to 127.0.0.1 for <c>register</c> and <c>change_password</c> only.</summary>
    public int HttpPort { get; }

    public string Domain => Options.Domain;

    public string ComponentDomain { get; }

    public string ComponentSecret { get; }

    public string LogFile => Path.Combine(Directory, "logs", "ejabberd.log");

    public string ConfigFile => Path.Combine(Directory, "ejabberd.yml");

    /// <summary>The private folder (config, spool, logs); deleted on dispose unless MONAL_E2E_KEEP_SERVER_DIRS is set.</summary>
    public string Directory { get; }

    public EjabberdOptions Options { get; }

    /// <summary>From process start until ejabberd logged "is started" and its ports accepted connections.</summary>
    public TimeSpan StartupTime { get; private set; }

    /// <summary>Writes the config, starts ejabberd and waits until it has started.</summary>
    /// <exception cref="InvalidOperationException">ejabberd is not installed (the message names .ci/install-peers.sh) or did not start.</exception>
    public static async Task<EjabberdServer> StartAsync(EjabberdOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new EjabberdOptions();
        if (!File.Exists(options.ErlExecutable))
        {
            throw new InvalidOperationException($"ejabberd is not installed: {options.ErlExecutable} does not exist. {ServerProcess.InstallHint}");
        }

        var libraries = FindErlLibs()
            ?? throw new InvalidOperationException($"ejabberd is not installed: no /usr/lib/*/ejabberd-*/ebin/ejabberd.app. {ServerProcess.InstallHint}");
        var componentDomain = options.ComponentDomain ?? "push." + options.Domain;
        var componentSecret = options.ComponentSecret ?? Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var failures = new StringBuilder();
        for (var attempt = 1; attempt <= StartAttempts; attempt++)
        {
            var directory = ServerProcess.CreatePrivateDirectory("monal-ejabberd-");
            var clientPort = ServerProcess.FreeLoopbackPort();
            var componentPort = ServerProcess.FreeLoopbackPort();
            var httpPort = ServerProcess.FreeLoopbackPort();
            var spool = System.IO.Directory.CreateDirectory(Path.Combine(directory.FullName, "spool")).FullName;
            System.IO.Directory.CreateDirectory(Path.Combine(directory.FullName, "logs"));
            var config = BuildConfig(options, clientPort, componentPort, httpPort, componentDomain, componentSecret);
            await File.WriteAllTextAsync(Path.Combine(directory.FullName, "ejabberd.yml"), config, cancellationToken);
            await ServerProcess.GiveToAsync(directory.FullName, ServiceUser, cancellationToken);

            var stopwatch = Stopwatch.StartNew();
            // No scheduler busy-waiting (+sbwt…): an Erlang VM spinning for work on a machine whose cores are busy
            // (the tests around it) took ejabberd's start from 4 s to 38 s with two other busy processes, 10 s without it.
            var child = ServerProcess.Start(
                options.ErlExecutable,
                ["+K", "true", "+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none", "-env", "ERL_CRASH_DUMP_BYTES", "0", "-mnesia", "dir", $"\"{spool}\"", "-s", "ejabberd", "-noinput"],
                ServiceUser,
                directory.FullName,
                new Dictionary<string, string>
                {
                    ["HOME"] = directory.FullName,
                    ["EJABBERD_CONFIG_PATH"] = Path.Combine(directory.FullName, "ejabberd.yml"),
                    ["EJABBERD_LOG_PATH"] = Path.Combine(directory.FullName, "logs", "ejabberd.log"),
                    ["ERL_LIBS"] = libraries,
                    ["ERL_CRASH_DUMP"] = Path.Combine(directory.FullName, "logs", "erl_crash.dump"),
                });
            var server = new EjabberdServer(child, directory, options, clientPort, componentPort, httpPort, componentDomain, componentSecret);
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

        throw new InvalidOperationException($"ejabberd did not start.{Environment.NewLine}{failures}");
    }

    public string ReadLog() => process.Describe(LogFile);

    /// <summary>Registers the account through mod_http_api; an existing account gets the new password.</summary>
    public async Task CreateUserAsync(string user, string password, CancellationToken cancellationToken = default)
    {
        using var response = await PostAsync("api/register", new Dictionary<string, string>
        {
            ["user"] = user,
            ["host"] = Domain,
            ["password"] = password,
        }, cancellationToken);
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (response.StatusCode == HttpStatusCode.Conflict || text.Contains("already registered", StringComparison.Ordinal))
        {
            using var change = await PostAsync("api/change_password", new Dictionary<string, string>
            {
                ["user"] = user,
                ["host"] = Domain,
                ["newpass"] = password,
            }, cancellationToken);
            if (change.IsSuccessStatusCode)
            {
                return;
            }

            text = await change.Content.ReadAsStringAsync(cancellationToken);
        }

        throw new InvalidOperationException($"ejabberd did not register the user ({(int)response.StatusCode}): {text}");
    }

    public async ValueTask DisposeAsync()
    {
        http.Dispose();
        await process.DisposeAsync();
        ServerProcess.DeleteDirectory(Directory);
    }

    internal static string BuildConfig(EjabberdOptions options, int clientPort, int componentPort, int httpPort,
        string componentDomain, string componentSecret)
    {
        var includeBody = options.IncludeBody switch
        {
            null => "",
            true => "\n    include_body: true",
            false => "\n    include_body: false",
        };
        return $$"""
            # Private test instance written by Monal.Push.EndToEnd EjabberdServer (see docs/peers.md).
            hosts:
              - {{Yaml(options.Domain)}}
            loglevel: info
            log_rotate_count: 0
            certfiles: []
            acme:
              auto: false

            listen:
              -
                port: {{clientPort}}
                ip: "127.0.0.1"
                module: ejabberd_c2s
                starttls: false
                starttls_required: false
              -
                port: {{componentPort}}
                ip: "127.0.0.1"
                module: ejabberd_service
                hosts:
                  {{Yaml(componentDomain)}}:
                    password: {{Yaml(componentSecret)}}
              -
                port: {{httpPort}}
                ip: "127.0.0.1"
                module: ejabberd_http
                request_handlers:
                  /api: mod_http_api

            auth_method: internal
            auth_password_format: plain

            api_permissions:
              "loopback account admin":
                who:
                  ip: 127.0.0.1/8
                what:
                  - register
                  - change_password

            modules:
              mod_disco: {}
              mod_http_api: {}
              mod_offline: {}
              mod_ping: {}
              mod_push:
                include_sender: {{(options.IncludeSender ? "true" : "false")}}{{includeBody}}
              mod_roster: {}

            """;
    }

    /// <summary>
    /// ejabberd's HTTP server answers 400 to chunked request bodies (what PostAsJsonAsync sends), so the JSON is
    /// buffered to get a Content-Length.
    /// </summary>
    private async Task<HttpResponseMessage> PostAsync(string path, Dictionary<string, string> body, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return await http.PostAsync(path, content, cancellationToken);
    }

    /// <summary>The folder to put in ERL_LIBS: the one holding ejabberd-VERSION/ebin/ejabberd.app.</summary>
    private static string? FindErlLibs()
    {
        if (!System.IO.Directory.Exists("/usr/lib"))
        {
            return null;
        }

        foreach (var lib in System.IO.Directory.EnumerateDirectories("/usr/lib").Prepend("/usr/lib"))
        {
            foreach (var app in System.IO.Directory.EnumerateDirectories(lib, "ejabberd-*"))
            {
                if (File.Exists(Path.Combine(app, "ebin", "ejabberd.app")))
                {
                    return lib;
                }
            }
        }

        return null;
    }

    /// <summary>A YAML double-quoted scalar.</summary>
    private static string Yaml(string value)
    {
        var builder = new StringBuilder("\"");
        foreach (var c in value)
        {
            if (c is '"' or '\\')
            {
                builder.Append('\\').Append(c);
            }
            else if (c < ' ')
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.Append('"').ToString();
    }

    /// <summary>Null when ready; otherwise why not ("port clash…" means: retry on other ports).</summary>
    private async Task<string?> WaitUntilReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var log = File.Exists(LogFile) ? ServerProcess.ReadShared(LogFile) : "";
            if (process.HasExited)
            {
                var all = log + process.Output;
                return all.Contains("eaddrinuse", StringComparison.OrdinalIgnoreCase)
                    ? "port clash: a listener port was taken"
                    : $"ejabberd exited with code {process.ExitCode}";
            }

            if (log.Contains(" is started in the node ", StringComparison.Ordinal)
                && await ServerProcess.AcceptsConnectionsAsync(ClientPort, cancellationToken)
                && await ServerProcess.AcceptsConnectionsAsync(ComponentPort, cancellationToken)
                && await ServerProcess.AcceptsConnectionsAsync(HttpPort, cancellationToken))
            {
                return null;
            }

            await Task.Delay(50, cancellationToken);
        }

        return $"not ready after {timeout}";
    }
}
