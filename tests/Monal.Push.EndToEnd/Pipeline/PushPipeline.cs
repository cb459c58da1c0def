using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Monal.Push.Cli.Hosting;
using Monal.Push.Demo.RunningPeers;
using Monal.Push.EndToEnd.Servers;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.MockApns;
using Monal.Push.Purge.Scheduling;
using Monal.Push.Tests.Delivery;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.EndToEnd.Pipeline;

/// <summary>
/// The whole pipeline around a real XMPP server: a database of its own on the test run's private PostgreSQL, the
/// mock APNs over h2c checking JWT, topic and headers like Apple, and `monal-push serve` (the real host, in this
/// process) connected as the server's XEP-0114 component.
/// </summary>
public sealed class PushPipeline : IAsyncDisposable
{
    public const string Module = "monalTest";
    public const string Topic = "im.monal.test";

    private readonly ProviderKeyFile _key;
    private readonly MonalHost _host;

    private PushPipeline(IXmppServer server, ProviderKeyFile key, MockApnsServer apns, MonalHost host, NpgsqlDataSource dataSource,
        string connectionString, string dataPath)
    {
        Server = server;
        _key = key;
        Apns = apns;
        _host = host;
        DataSource = dataSource;
        ConnectionString = connectionString;
        DataPath = dataPath;
        Http = new HttpClient { BaseAddress = host.HttpAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public IXmppServer Server { get; }

    public MockApnsServer Apns { get; }

    public NpgsqlDataSource DataSource { get; }

    public string ConnectionString { get; }

    public string DataPath { get; }

    public HttpClient Http { get; }

    public static async Task<PushPipeline> StartAsync(IXmppServer server, params string[] extraSwitches)
    {
        var key = new ProviderKeyFile();
        var apns = await MockApnsServer.StartAsync(new MockApnsOptions
        {
            UseTls = false,
            Topic = Topic,
            ProviderPublicKeyPem = key.PublicKeyPem,
            KeyId = key.KeyId,
            TeamId = key.TeamId,
        });
        var connectionString = await TestDatabase.CreateEmptyDatabaseAsync();
        var dataPath = Directory.CreateTempSubdirectory("monal-e2e-data-").FullName;
        string[] switches =
        [
            $"--ConnectionStrings:Ledger={connectionString}",
            $"--Data:Path={dataPath}",
            "--Http:Urls=http://127.0.0.1:0",
            $"--Xmpp:Component:Host={server.Host}",
            $"--Xmpp:Component:Port={server.ComponentPort}",
            $"--Xmpp:Component:Domain={server.ComponentDomain}",
            $"--Xmpp:Component:Secret={server.ComponentSecret}",
            $"--PushModules:{Module}:Topic={Topic}",
            $"--PushModules:{Module}:Endpoint={apns.Endpoint}",
            $"--PushModules:{Module}:TeamId={key.TeamId}",
            $"--PushModules:{Module}:KeyId={key.KeyId}",
            $"--PushModules:{Module}:KeyFile={key.Path}",
            $"--Registration:PushModule={Module}",
            .. extraSwitches,
        ];
        var host = await MonalHost.StartAsync(switches, HostRole.Serve, CancellationToken.None);
        var stack = new PushPipeline(server, key, apns, host, NpgsqlDataSource.Create(connectionString), connectionString, dataPath);
        await stack.WaitUntilReadyAsync();
        return stack;
    }

    /// <summary>Waits until `/health/ready` is healthy: ledger migrated, component link up, modules loaded.</summary>
    public async Task WaitUntilReadyAsync()
    {
        var sw = Stopwatch.StartNew();
        string last = "";
        while (sw.Elapsed < TimeSpan.FromSeconds(60))
        {
            using var response = await Http.GetAsync(new Uri("/health/ready", UriKind.Relative));
            last = await response.Content.ReadAsStringAsync();
            if (response.IsSuccessStatusCode)
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("The push server did not become ready: " + last);
    }

    /// <summary>Registers a device the way an older Monal does (mod_push_appserver's v1 API); returns its secret.</summary>
    public async Task<string> RegisterAsync(Guid node, string token)
    {
        using var content = new FormUrlEncodedContent([new("type", "apns"), new("node", node.ToString()), new("token", token)]);
        using var response = await Http.PostAsync(new Uri("/v1/register", UriKind.Relative), content);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        var lines = body.Split('\n');
        Assert.Equal("OK", lines[0]);
        Assert.Equal(node.ToString(), lines[1], ignoreCase: true);
        return lines[2];
    }

    public async Task<long> CountAsync(string sql, params object[] args)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The first column of the first row, as text.</summary>
    public async Task<string> TextAsync(string sql, params object[] args)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        return Convert.ToString(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture) ?? "";
    }

    /// <summary>Polls until the query counts at least <paramref name="atLeast"/> rows.</summary>
    public async Task<long> WaitForCountAsync(long atLeast, string sql, params object[] args)
    {
        var sw = Stopwatch.StartNew();
        long n = 0;
        while (sw.Elapsed < TimeSpan.FromSeconds(30))
        {
            n = await CountAsync(sql, args);
            if (n >= atLeast)
            {
                return n;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"Expected at least {atLeast} rows, saw {n}: {sql}");
    }

    /// <summary>
    /// Waits for the mock APNs to have received a request for this token and finished with it: the mock records a
    /// request when it arrives, before it decides the answer, so its Status read any earlier could still be 0.
    /// </summary>
    public async Task<MockApnsRequest> WaitForApnsRequestAsync(string token)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(30))
        {
            var hit = Apns.Requests.FirstOrDefault(r => string.Equals(r.DeviceToken, token, StringComparison.OrdinalIgnoreCase));
            if (hit is not null)
            {
                await hit.Done.WaitAsync(TimeSpan.FromSeconds(30));
                return hit;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException("No APNs request arrived for the device.");
    }

    /// <summary>The whole database as pg_dump writes it (data and schema), for privacy assertions.</summary>
    public Task<string> DumpDatabaseAsync() => PgDump.DumpAsync(ConnectionString);

    /// <summary>Everything `serve` wrote to its log files so far.</summary>
    public string ReadLogFiles()
    {
        var folder = Path.Combine(DataPath, "logs");
        return Directory.Exists(folder)
            ? string.Join("\n", Directory.GetFiles(folder).Select(f =>
            {
                using var stream = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(stream);
                return reader.ReadToEnd();
            }))
            : "";
    }

    /// <summary>Runs one retention job now, as `monal-push purge run --job NAME` does, and checks it succeeded.</summary>
    public async Task RunRetentionJobAsync(string job)
    {
        var run = await _host.Services.GetRequiredService<RetentionJobs>().RunAsync(job, dryRun: false, CancellationToken.None);
        Assert.Equal(RetentionJobs.Succeeded, run.Outcome);
    }

    /// <summary>Publishes answered cancel/item-not-found so far, from `/metrics`.</summary>
    public async Task<long> ItemNotFoundRepliesAsync()
    {
        var text = await Http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        return text.Split('\n')
            .Where(l => l.StartsWith("monal_push_ingest_replies_total{", StringComparison.Ordinal) && l.Contains("condition=\"item-not-found\"", StringComparison.Ordinal))
            .Sum(l => (long)double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Polls a condition for up to 30 seconds.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string? what = null)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("Timed out waiting" + (what is null ? "" : ": " + what));
    }

    public async Task<JsonElement> ReadyReportAsync() =>
        await Http.GetFromJsonAsync<JsonElement>(new Uri("/health/ready", UriKind.Relative));

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _host.DisposeAsync();
        await Apns.DisposeAsync();
        await DataSource.DisposeAsync();
        _key.Dispose();
        try
        {
            Directory.Delete(DataPath, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }
}
