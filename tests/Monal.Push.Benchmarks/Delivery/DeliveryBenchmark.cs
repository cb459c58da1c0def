using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Monal.Push.Benchmarks.EndToEnd;
using Monal.Push.Benchmarks.Ledger;
using Monal.Push.Benchmarks.Support;
using Monal.Push.Delivery;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.MockApns;
using Monal.Push.Projections;
using Npgsql;

namespace Monal.Push.Benchmarks.Delivery;

/// <summary>
/// Issue 4's benchmark: one node (AddLedger + AddProjections + AddDelivery, its hosted services started) against the
/// mock APNs over h2c; N PushRequested appended, pushes/s until N PushDelivered and p50/p99 of their LatencyMs, with
/// <c>PushModules:monalProdiOS:MaxConcurrentRequests=100</c> on one connection; next to the raw HttpClient HTTP/2
/// ceiling to the same mock (one connection, 100 in flight).
/// </summary>
internal static class DeliveryBenchmark
{
    private const string Module = "monalProdiOS";
    private const string Topic = "im.monal.bench";
    private const string KeyId = "KEY1234567";
    private const string TeamId = "TEAM123456";
    private const int Devices = 1_000;

    public static async Task<int> RunAsync(string[] args)
    {
        var pushes = AppendBenchmark.Option(args, "--pushes", 20_000);
        // --backlog: append every push before the dispatcher starts, so pushes/s is the drain rate alone (the live run's
        // rate is capped by the 64 appenders); latency then includes the wait in the backlog.
        var backlog = args.Contains("--backlog");
        // --connections N: allow 100×N requests in flight; the mock allows 100 streams per connection, so the client's
        // handler (EnableMultipleHttp2Connections) opens up to N connections to it.
        var connections = Math.Max(1, AppendBenchmark.Option(args, "--connections", 1));
        var work = Directory.CreateTempSubdirectory("monal-delivery-").FullName;
        try
        {
            await using var db = await BenchDatabase.StartAsync();
            Console.WriteLine($"# delivery benchmark: {Environment.ProcessorCount} cores, {await db.ServerVersionAsync()}, load average {LoadAverage.Now()}");
            Console.WriteLine($"# command: dotnet run -c Release --project tests/Monal.Push.Benchmarks -- delivery --pushes {pushes}{(backlog ? " --backlog" : "")} --connections {connections}");

            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var keyFile = Path.Combine(work, $"AuthKey_{KeyId}.p8");
            await File.WriteAllTextAsync(keyFile, key.ExportPkcs8PrivateKeyPem());
            await using var apns = await MockApnsServer.StartAsync(new MockApnsOptions
            {
                Port = 0,
                UseTls = false,
                Latency = TimeSpan.FromMilliseconds(1),
                ProviderPublicKeyPem = key.ExportSubjectPublicKeyInfoPem(),
                KeyId = KeyId,
                TeamId = TeamId,
                Topic = Topic,
                RecordRequests = false,
            });

            var ceiling = await Http2Ceiling.MeasureAsync(apns.Endpoint, key, KeyId, TeamId, Topic, TimeSpan.FromSeconds(5), CancellationToken.None);

            var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ConnectionStrings:Ledger"] = db.ConnectionString,
                ["Ledger:MasterKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
                ["Ledger:MigrateOnStart"] = "false",
                ["Projections:RunDaemon"] = "false",
                [$"PushModules:{Module}:Topic"] = Topic,
                [$"PushModules:{Module}:TeamId"] = TeamId,
                [$"PushModules:{Module}:KeyId"] = KeyId,
                [$"PushModules:{Module}:KeyFile"] = keyFile,
                [$"PushModules:{Module}:Endpoint"] = apns.Endpoint.ToString(),
                [$"PushModules:{Module}:MaxConcurrentRequests"] = (100 * connections).ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Delivery:MaxInFlight"] = (100 * connections + 64).ToString(System.Globalization.CultureInfo.InvariantCulture),
            }).Build();
            await using var provider = new ServiceCollection()
                .AddSingleton<IConfiguration>(config)
                .AddLogging()
                .AddLedger(config)
                .AddProjections(config)
                .AddDelivery(config)
                .BuildServiceProvider();

            var keys = provider.GetRequiredService<DataKeys>();
            var devices = new Guid[Devices];
            for (var i = 0; i < Devices; i++)
            {
                devices[i] = Guid.CreateVersion7();
                var encrypted = await keys.EncryptAsync(devices[i], Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)));
                await using var cmd = db.DataSource.CreateCommand("""
                    insert into devices (device_id, mode, push_module, encrypted_token, registered_at)
                    values ($1, 'stateless', $2, $3, now())
                    """);
                cmd.Parameters.Add(new() { Value = devices[i] });
                cmd.Parameters.Add(new() { Value = Module });
                cmd.Parameters.Add(new() { Value = encrypted });
                await cmd.ExecuteNonQueryAsync();
            }

            var hosted = provider.GetServices<IHostedService>().ToArray();
            async Task StartAsync()
            {
                foreach (var service in hosted)
                {
                    await service.StartAsync(CancellationToken.None);
                }
            }

            if (!backlog)
            {
                await StartAsync();
            }

            var store = provider.GetRequiredService<EventStore>();
            var watch = Stopwatch.StartNew();
            long next = 0;
            var appenders = Enumerable.Range(0, 64).Select(async _ =>
            {
                while (Interlocked.Increment(ref next) is var n && n <= pushes)
                {
                    var device = devices[n % Devices];
                    var now = DateTimeOffset.UtcNow;
                    await store.AppendAsync(device, "device", ExpectedVersion.Any,
                        [new PushRequested(Guid.CreateVersion7(), device, "example.org", now, now.AddHours(1))]);
                }
            }).ToArray();
            await Task.WhenAll(appenders);
            var appended = watch.Elapsed;
            if (backlog)
            {
                await StartAsync();
                watch.Restart();
            }

            long delivered = 0;
            long failed = 0;
            using var patience = new CancellationTokenSource(TimeSpan.FromMinutes(10));
            while (delivered + failed < pushes)
            {
                await Task.Delay(100, patience.Token);
                delivered = await CountAsync(db.DataSource, "push_delivered.v1");
                failed = await CountAsync(db.DataSource, "push_failed.v1");
            }

            var elapsed = watch.Elapsed;
            foreach (var service in Enumerable.Reverse(hosted))
            {
                await service.StopAsync(CancellationToken.None);
            }

            await using var latency = db.DataSource.CreateCommand("""
                select percentile_cont(0.5) within group (order by (data->>'latency_ms')::float8),
                       percentile_cont(0.99) within group (order by (data->>'latency_ms')::float8)
                from push_events where type = 'push_delivered.v1'
                """);
            await using var reader = await latency.ExecuteReaderAsync();
            await reader.ReadAsync();
            var (p50, p99) = (reader.GetDouble(0), reader.GetDouble(1));

            var rate = pushes / elapsed.TotalSeconds;
            Console.WriteLine($"# appended {pushes:N0} PushRequested in {appended.TotalSeconds:N1} s from 64 appenders; {failed:N0} failed");
            Console.WriteLine();
            Console.WriteLine("| what | pushes/s | p50 requested→delivered | p99 requested→delivered | vs HTTP/2 ceiling |");
            Console.WriteLine("| --- | ---: | ---: | ---: | ---: |");
            Console.WriteLine($"| dispatcher{(backlog ? " draining a backlog" : "")}, {pushes:N0} pushes, {Devices:N0} devices, MaxConcurrentRequests={100 * connections}, {(connections == 1 ? "one connection" : $"up to {connections} connections")} | {rate:N0} | {p50:N1} ms | {p99:N1} ms | {rate / ceiling:P0} |");
            Console.WriteLine($"| raw HttpClient HTTP/2 ceiling (one connection, 100 in flight, 5 s) | {ceiling:N0} | – | – | 100 % |");
            Console.WriteLine($"# load average after: {LoadAverage.Now()}");
            return failed == 0 ? 0 : 1;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<long> CountAsync(NpgsqlDataSource dataSource, string type)
    {
        await using var cmd = dataSource.CreateCommand("select count(*) from push_events where type = $1");
        cmd.Parameters.Add(new() { Value = type });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }
}
