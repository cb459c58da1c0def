using System.CommandLine;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Cli.Hosting;
using Monal.Push.Delivery.PushModules;
using Monal.Push.Ingest.Limiting;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Embedded;
using Monal.Push.Ledger.Schema;
using Npgsql;

namespace Monal.Push.Cli.Commands;

/// <summary>
/// `monal-push doctor`: checks configuration, database, the XMPP component port and every push module's
/// credentials (the JWT signs; Apple is never called) and says what to fix. Changes nothing: no migration, no
/// embedded cluster is started.
/// </summary>
internal static class DoctorCommand
{
    public static Command Create()
    {
        var command = new Command("doctor", "Check configuration, database, XMPP link and APNs credentials; print what to fix.");
        command.SetAction(async (parse, ct) =>
        {
            var configuration = new ConfigurationManager();
            MonalHost.ConfigureSources(configuration, [.. parse.UnmatchedTokens], includeWorkingDirectoryFile: true);
            var report = new DoctorReport(Console.Out);
            CheckConfiguration(configuration, report);
            CheckLimits(configuration, report);
            await CheckDatabaseAsync(configuration, report, ct);
            await CheckXmppAsync(configuration, report, ct);
            CheckPushModules(configuration, report);
            Console.Out.WriteLine(report.Problems == 0 ? "All checks passed." : $"{report.Problems} problem(s) to fix.");
            return report.Problems == 0 ? 0 : 1;
        });
        return command;
    }

    private static void CheckConfiguration(ConfigurationManager configuration, DoctorReport report)
    {
        var domain = configuration["Xmpp:Component:Domain"];
        var secret = configuration["Xmpp:Component:Secret"];
        report.Check(!string.IsNullOrWhiteSpace(domain), "config", $"component domain: {domain}",
            "set Xmpp:Component:Domain to the component's domain (the name in your XMPP server's Component block)");
        report.Check(!string.IsNullOrWhiteSpace(secret), "config", "component secret is set",
            "set Xmpp:Component:Secret to the component_secret / password of your XMPP server");
        var module = configuration["Registration:PushModule"];
        if (!string.IsNullOrWhiteSpace(module))
        {
            report.Check(configuration.GetSection($"PushModules:{module}").Exists(), "config", $"Registration:PushModule = {module}",
                $"Registration:PushModule names '{module}', which is not configured under PushModules");
        }
    }

    /// <summary>The abuse limits in force (issue 18): shown, so an operator sees what a flooding sender meets.</summary>
    private static void CheckLimits(ConfigurationManager configuration, DoctorReport report)
    {
        LimitsOptions limits;
        HttpEdgeOptions edge;
        try
        {
            limits = configuration.GetSection(LimitsOptions.Section).Get<LimitsOptions>() ?? new LimitsOptions();
            edge = configuration.GetSection(HttpEdgeOptions.Section).Get<HttpEdgeOptions>() ?? new HttpEdgeOptions();
        }
        catch (InvalidOperationException ex)
        {
            report.Fail("limits", ex.Message, "fix the Limits and Http sections (docs/operators.md, \"Limits\")");
            return;
        }

        var problems = limits.Problems().Concat(edge.Problems()).ToList();
        foreach (var problem in problems)
        {
            report.Fail("limits", problem, null);
        }

        if (problems.Count == 0)
        {
            report.Ok("limits", limits.Describe());
            report.Ok("limits", edge.KnownProxies.Length == 0
                ? "X-Forwarded-For is believed from loopback proxies only (Http:KnownProxies is empty)"
                : $"X-Forwarded-For is believed from {string.Join(", ", edge.KnownProxies)}");
        }
    }

    private static async Task CheckDatabaseAsync(ConfigurationManager configuration, DoctorReport report, CancellationToken ct)
    {
        var connectionString = configuration.GetConnectionString("Ledger");
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            try
            {
                var bin = EmbeddedPostgres.FindBinaries();
                var folder = Path.GetFullPath(EmbeddedPostgres.ClusterFolder(configuration["Data:Path"] ?? "var"));
                report.Ok("database", $"embedded default: PostgreSQL binaries in {bin}, cluster in {folder}" +
                    (Directory.Exists(Path.Combine(folder, "pgdata")) ? "" : " (created at the first `serve`)"));
            }
            catch (PostgresNotInstalledException ex)
            {
                report.Fail("database", "no ConnectionStrings:Ledger and " + ex.Message, "apt-get install -y postgresql, or set ConnectionStrings:Ledger");
            }

            return;
        }

        try
        {
            // The same pool settings `serve` applies, so the budget shown is the one a node would use.
            var builder = new NpgsqlDataSourceBuilder(connectionString);
            ConnectionBudget.Apply(builder, connectionString);
            await using var dataSource = builder.Build();
            var pending = await new SchemaMigrator(dataSource, NullLogger<SchemaMigrator>.Instance)
                .PendingAsync(MigrationSource.Embedded(), ct);
            report.Check(pending.Count == 0, "database", "reachable and migrated",
                $"migrations not applied: {string.Join(", ", pending)}; run `monal-push migrate`");
            var budget = await new ConnectionBudget(dataSource).ReadAsync(ct);
            report.Check(budget.NodesThatFit >= 1, "database", "connections: " + budget,
                $"connections: {budget}. Lower Maximum Pool Size in ConnectionStrings:Ledger or raise max_connections");
            await CheckMasterKeyAsync(configuration, dataSource, report, ct);
        }
        catch (Exception ex) when (ex is NpgsqlException or ArgumentException or TimeoutException)
        {
            report.Fail("database", $"cannot connect: {ex.Message}", "check ConnectionStrings:Ledger (host, port, user, password) and that PostgreSQL runs");
        }
    }

    /// <summary>Compares the configured master key with the database's key check value, creating nothing (issue 19).</summary>
    private static async Task CheckMasterKeyAsync(ConfigurationManager configuration, NpgsqlDataSource dataSource, DoctorReport report, CancellationToken ct)
    {
        var ledger = configuration.GetSection("Ledger").Get<LedgerOptions>() ?? new LedgerOptions();
        var data = new DataOptions { Path = configuration["Data:Path"] ?? "var" };
        MasterKey? key;
        try
        {
            key = MasterKey.TryLoadExisting(ledger, data);
        }
        catch (Exception ex) when (ex is MasterKeyException or IOException or UnauthorizedAccessException)
        {
            report.Fail("key", ex.Message, null);
            return;
        }

        byte[]? stored;
        try
        {
            await using var cmd = dataSource.CreateCommand("select check_value from master_key_check where id = 1");
            stored = await cmd.ExecuteScalarAsync(ct) as byte[];
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            stored = null;
        }

        var file = MasterKey.FilePath(ledger, data);
        if (stored is null)
        {
            report.Ok("key", key is null
                ? $"no master key yet: the first `serve` creates {file} and records its check value in the database"
                : "master key loads; the database has no key check value yet (the next start records this key's)");
        }
        else if (key is null)
        {
            report.Fail("key", $"the database was set up with a master key, and {file} does not exist",
                $"copy the key file of a node that runs on this database to {file} (mode 0600), or set Ledger:MasterKeyFile to it");
        }
        else
        {
            report.Check(System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(stored, key.CheckValue()), "key",
                "master key matches the database's key check value",
                $"the master key ({key.Source}) is not this database's: copy the key file of a node that runs on this database over it (or set Ledger:MasterKeyFile / Ledger:MasterKey to it); key rotation is not supported");
        }
    }

    private static async Task CheckXmppAsync(ConfigurationManager configuration, DoctorReport report, CancellationToken ct)
    {
        var host = configuration["Xmpp:Component:Host"] ?? "127.0.0.1";
        var port = int.TryParse(configuration["Xmpp:Component:Port"], out var p) ? p : 5347;
        var domain = configuration["Xmpp:Component:Domain"] ?? "push.invalid";
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            using var client = new TcpClient();
            await client.ConnectAsync(host, port, timeout.Token);
            var stream = client.GetStream();
            // Open a stream and read the server's header, then leave before the handshake: a running `serve`
            // keeps its own link (XEP-0114 allows one connection per component domain).
            var header = $"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='{System.Security.SecurityElement.Escape(domain)}'>";
            await stream.WriteAsync(Encoding.UTF8.GetBytes(header), timeout.Token);
            var buffer = new byte[2048];
            var read = await stream.ReadAsync(buffer, timeout.Token);
            var answer = Encoding.UTF8.GetString(buffer, 0, read);
            report.Check(answer.Contains("stream:stream", StringComparison.Ordinal) && answer.Contains(" id=", StringComparison.Ordinal),
                "xmpp", $"component port {host}:{port} answers with a stream header",
                $"{host}:{port} answered, but not as an XEP-0114 component port: {(answer.Contains("stream:error", StringComparison.Ordinal) ? "stream error (is the domain configured as a component?)" : "no stream header")}");
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            report.Fail("xmpp", $"cannot reach the component port {host}:{port} ({ex.GetType().Name})",
                "start the XMPP server, add the Component block (docs/operators.md), or set Xmpp:Component:Host/Port");
        }
    }

    private static void CheckPushModules(ConfigurationManager configuration, DoctorReport report)
    {
        var checks = PushModuleDiagnostics.Check(configuration, TimeProvider.System);
        if (checks.Count == 0)
        {
            report.Fail("apns", "no push module is configured", "add PushModules:<name>:Topic, TeamId, KeyId and KeyFile (docs/operators.md)");
        }

        foreach (var check in checks)
        {
            if (check.Ready)
            {
                report.Ok("apns", $"{check.Module}: credentials load and sign (endpoint {check.Endpoint})");
            }

            foreach (var problem in check.Problems)
            {
                report.Fail("apns", $"{check.Module}: {problem}", null);
            }
        }
    }

    private sealed class DoctorReport(TextWriter output)
    {
        public int Problems { get; private set; }

        public void Check(bool ok, string area, string okText, string fix)
        {
            if (ok)
            {
                Ok(area, okText);
            }
            else
            {
                Fail(area, fix, null);
            }
        }

        public void Ok(string area, string text) => output.WriteLine($"ok    {area,-8} {text}");

        public void Fail(string area, string text, string? fix)
        {
            Problems++;
            output.WriteLine($"FAIL  {area,-8} {text}");
            if (fix is not null)
            {
                output.WriteLine($"      {"",-8} fix: {fix}");
            }
        }
    }
}
