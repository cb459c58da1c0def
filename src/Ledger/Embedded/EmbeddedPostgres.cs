using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Monal.Push.Ledger.Embedded;

/// <summary>PostgreSQL's server binaries are not installed.</summary>
public sealed class PostgresNotInstalledException()
    : Exception("PostgreSQL server binaries (initdb, pg_ctl) were not found. Install the Debian package: apt-get install -y postgresql");

/// <summary>
/// A private PostgreSQL cluster under a folder (the embedded default of `serve`, and the tests' database):
/// initdb on first use, pg_ctl start on a free loopback port, reuse on the next start, pg_ctl stop on dispose.
/// initdb and postgres refuse to run as root, so as root the cluster belongs to the `postgres` system user and
/// every command runs through runuser.
/// </summary>
public sealed class EmbeddedPostgres : IAsyncDisposable
{
    private const string User = "monal";

    /// <summary>The file pg_ctl writes the postmaster's first words to, under the cluster folder.</summary>
    public const string StartupLogName = "postgres.log";

    /// <summary>
    /// The server log's folder under the cluster folder (beside <c>pgdata</c>): one file per UTC day,
    /// <c>postgresql-YYYYMMDD.log</c>, which the log-file retention job deletes after Retention:LogFiles like the
    /// server's own log files.
    /// </summary>
    public const string LogFolderName = "log";

    /// <summary>
    /// How the cluster logs, passed on every start (so clusters made by an earlier version get them too). The
    /// privacy policy covers every log: server logs are deleted after 14 days and never hold a JID, a token or
    /// message content. So the logging collector writes one file per UTC day (a dated name the retention job can
    /// delete), and nothing a client sent reaches it: statements that fail are not logged, nor parameters, nor
    /// DETAIL/CONTEXT lines (a unique violation's DETAIL quotes the key, a device UUID), and errors caused by
    /// statements (severity ERROR, whose own message may quote a value, e.g. "invalid input syntax for type uuid:
    /// ...", or our "stream ... is at version ...") are left to the client, which gets each of them anyway.
    /// What remains is the server's own life: start, stop, checkpoints, FATAL and PANIC.
    /// </summary>
    public static readonly IReadOnlyList<KeyValuePair<string, string>> LogSettings =
    [
        new("logging_collector", "on"),
        new("log_directory", "../" + LogFolderName),
        new("log_filename", "postgresql-%Y%m%d.log"),
        new("log_timezone", "UTC"),
        new("log_rotation_age", "1d"),
        new("log_rotation_size", "0"),
        new("log_truncate_on_rotation", "off"),
        new("log_file_mode", "0600"),
        new("log_min_messages", "log"),
        new("log_min_error_statement", "panic"),
        new("log_error_verbosity", "terse"),
        new("log_statement", "none"),
        new("log_min_duration_statement", "-1"),
        new("log_parameter_max_length", "0"),
        new("log_parameter_max_length_on_error", "0"),
        new("log_connections", "off"),
        new("log_disconnections", "off"),
        new("log_lock_waits", "off"),
    ];
    private readonly string _root;
    private readonly string _bin;
    private readonly ILogger _logger;
    private readonly bool _asPostgresUser;
    private bool _started;

    private EmbeddedPostgres(string root, string bin, ILogger logger)
    {
        _root = root;
        _bin = bin;
        _logger = logger;
        _asPostgresUser = Environment.UserName == "root";
    }

    /// <summary>The cluster's data directory.</summary>
    public string DataDirectory => Path.Combine(_root, "pgdata");

    /// <summary>The folder of the cluster's daily server log files.</summary>
    public string LogDirectory => Path.Combine(_root, LogFolderName);

    /// <summary>The cluster folder <c>serve</c> and the admin verbs use under a data folder.</summary>
    public static string ClusterFolder(string dataPath) => Path.Combine(dataPath, "postgres");

    /// <summary>The loopback port the cluster listens on.</summary>
    public int Port { get; private set; }

    /// <summary>
    /// Connection string to a database of the cluster. It sets no Maximum Pool Size, so serve applies its default
    /// connection budget (ConnectionBudget) to the embedded cluster as to any other: on two cores 25 connections gave
    /// PostgreSQL 16-43 % less CPU per publish than 100 (docs/benchmarks.md, "Issue 16, eighth pass").
    /// </summary>
    public string ConnectionString(string database = "monal") => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = User,
        Password = File.ReadAllText(Path.Combine(_root, "password")).Trim(),
        Database = database,
    }.ConnectionString;

    /// <summary>Starts (creating on first use) the cluster under <paramref name="folder"/> and makes sure <c>monal</c> exists.</summary>
    public static async Task<EmbeddedPostgres> StartAsync(string folder, ILogger logger, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(logger);
        var root = Path.GetFullPath(folder);
        var pg = new EmbeddedPostgres(root, FindBinaries(), logger);
        await pg.StartAsync(ct);
        return pg;
    }

    /// <summary>Finds initdb and pg_ctl: <c>pg_config --bindir</c>, else the newest /usr/lib/postgresql/*/bin.</summary>
    public static string FindBinaries()
    {
        var candidates = new List<string>();
        var env = Environment.GetEnvironmentVariable("MONAL_PG_BIN");
        if (!string.IsNullOrEmpty(env))
        {
            candidates.Add(env);
        }

        try
        {
            using var p = Process.Start(new ProcessStartInfo("pg_config", "--bindir") { RedirectStandardOutput = true, RedirectStandardError = true });
            if (p is not null)
            {
                var output = p.StandardOutput.ReadToEnd().Trim();
                p.WaitForExit();
                if (p.ExitCode == 0)
                {
                    candidates.Add(output);
                }
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // pg_config is not installed (it comes with libpq-dev or postgresql-client): look in the usual place.
        }

        if (Directory.Exists("/usr/lib/postgresql"))
        {
            candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql")
                .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0)
                .Select(d => Path.Combine(d, "bin")));
        }

        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")))
            ?? throw new PostgresNotInstalledException();
    }

    private async Task StartAsync(CancellationToken ct)
    {
        Directory.CreateDirectory(_root);
        if (_asPostgresUser)
        {
            await EnsureReachableAsync(ct);
        }

        if (!File.Exists(Path.Combine(DataDirectory, "PG_VERSION")))
        {
            await InitAsync(ct);
        }

        var running = await RunningPortAsync(ct);
        if (running is { } port)
        {
            Port = port;
            Log.EmbeddedPostgresReused(_logger, Port);
        }
        else
        {
            Port = PreferredPort();
            // pg_ctl's -l file only receives what the postmaster says before the logging collector takes over (and
            // an earlier version logged everything there, for ever): it starts empty on every start.
            var startupLog = Path.Combine(_root, StartupLogName);
            File.Delete(startupLog);
            await RunAsync("pg_ctl", ["-D", DataDirectory, "-l", startupLog, "-w", "-t", "60",
                "-o", $"-p {Port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' {string.Join(' ', LogSettings.Select(s => $"-c {s.Key}={s.Value}"))}",
                "start"], ct);
            await File.WriteAllTextAsync(Path.Combine(_root, "port"), Port.ToString(CultureInfo.InvariantCulture), ct);
            Log.EmbeddedPostgresStarted(_logger, Port);
        }

        _started = true;
        await CreateDatabaseAsync("monal", ct);
    }

    /// <summary>Creates a database if it is missing.</summary>
    public async Task CreateDatabaseAsync(string name, CancellationToken ct = default)
    {
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync(ct);
        await using var exists = new NpgsqlCommand("select 1 from pg_database where datname = $1", connection);
        exists.Parameters.Add(new() { Value = name });
        if (await exists.ExecuteScalarAsync(ct) is null)
        {
            await using var create = new NpgsqlCommand($"create database \"{name}\"", connection);
            await create.ExecuteNonQueryAsync(ct);
        }
    }

    private async Task InitAsync(CancellationToken ct)
    {
        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        var pwfile = Path.Combine(_root, "password");
        await File.WriteAllTextAsync(pwfile, password + "\n", ct);
        File.SetUnixFileMode(pwfile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Directory.CreateDirectory(DataDirectory);
        string pwForInit = pwfile;
        if (_asPostgresUser)
        {
            // initdb reads the password file as postgres: hand it a copy it owns, then remove it.
            pwForInit = Path.Combine(DataDirectory, "..", "initdb.pw");
            await File.WriteAllTextAsync(pwForInit, password + "\n", ct);
            await ChownAsync(pwForInit, ct);
            await ChownAsync(DataDirectory, ct);
        }

        try
        {
            await RunAsync("initdb", ["-D", DataDirectory, "-U", User, "--pwfile", pwForInit, "-A", "scram-sha-256",
                "-E", "UTF8", "--locale=C", "--no-instructions"], ct);
        }
        finally
        {
            if (pwForInit != pwfile)
            {
                File.Delete(pwForInit);
            }
        }

        // Sized for a 2-core box (docs/benchmarks.md); durability settings stay at PostgreSQL's safe defaults.
        await File.AppendAllTextAsync(Path.Combine(DataDirectory, "postgresql.conf"), """

            # monal-push embedded defaults
            max_connections = 200
            shared_buffers = 256MB
            wal_buffers = 16MB
            max_wal_size = 2GB
            checkpoint_timeout = 15min
            """, ct);
        Log.EmbeddedPostgresInitialized(_logger);
    }

    private async Task<int?> RunningPortAsync(CancellationToken ct)
    {
        var pid = Path.Combine(DataDirectory, "postmaster.pid");
        if (!File.Exists(pid))
        {
            return null;
        }

        var status = await RunAsync("pg_ctl", ["-D", DataDirectory, "status"], ct, throwOnError: false);
        if (status != 0)
        {
            return null;
        }

        var lines = await File.ReadAllLinesAsync(pid, ct);
        return lines.Length > 3 && int.TryParse(lines[3], out var port) ? port : null;
    }

    private int PreferredPort()
    {
        var file = Path.Combine(_root, "port");
        if (File.Exists(file) && int.TryParse(File.ReadAllText(file), out var last) && IsFree(last))
        {
            return last;
        }

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private async Task EnsureReachableAsync(CancellationToken ct)
    {
        // The cluster folder belongs to postgres (it writes its log there), and postgres must be able to enter
        // every folder above it.
        await RunRawAsync("chown", ["postgres:postgres", _root], ct);
        {
            if (await RunRawAsync("runuser", ["-u", "postgres", "--", "test", "-x", _root], ct) != 0)
            {
                throw new InvalidOperationException(
                    $"As root, the embedded PostgreSQL runs as the 'postgres' user, which cannot reach {_root}. " +
                    "Set Data:Path to a folder whose parents are world-executable (e.g. /var/lib/monal-push), or run as a normal user.");
            }
        }
    }

    private static Task<int> ChownAsync(string path, CancellationToken ct) => RunRawAsync("chown", ["-R", "postgres:postgres", path], ct);

    private async Task<int> RunAsync(string tool, string[] args, CancellationToken ct, bool throwOnError = true)
    {
        var exe = Path.Combine(_bin, tool);
        var code = _asPostgresUser
            ? await RunRawAsync("runuser", ["-u", "postgres", "--", exe, .. args], ct, throwOnError ? tool : null)
            : await RunRawAsync(exe, args, ct, throwOnError ? tool : null);
        return code;
    }

    private static async Task<int> RunRawAsync(string file, string[] args, CancellationToken ct, string? failAs = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {file}.");
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        if (failAs is not null && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{failAs} failed with exit code {process.ExitCode}: {(await stderr).Trim()} {(await stdout).Trim()}");
        }

        return process.ExitCode;
    }

    /// <summary>
    /// Restarts the cluster the way an operator's minor upgrade does (<c>pg_ctl restart -m fast</c>: every session is
    /// ended with 57P01, the server refuses connections, then comes back on the same port). Fault tests use it.
    /// </summary>
    public async Task RestartAsync(CancellationToken ct = default)
    {
        await RunAsync("pg_ctl", ["-D", DataDirectory, "-l", Path.Combine(_root, StartupLogName), "-m", "fast", "-w", "-t", "60", "restart"], ct);
    }

    /// <summary>Stops the cluster (fast shutdown: open sessions are rolled back, committed data is safe).</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_started)
        {
            return;
        }

        _started = false;
        NpgsqlConnection.ClearAllPools();
        await RunAsync("pg_ctl", ["-D", DataDirectory, "-m", "fast", "-w", "stop"], CancellationToken.None, throwOnError: false);
        Log.EmbeddedPostgresStopped(_logger);
    }
}
