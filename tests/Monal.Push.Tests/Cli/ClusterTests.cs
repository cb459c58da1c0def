using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Cli.Hosting;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Events;
using Monal.Push.Load.Listening;
using Monal.Push.MockApns;
using Monal.Push.Projections.Daemon;
using Monal.Push.Purge;
using Monal.Push.Purge.Scheduling;
using Monal.Push.Tests.Delivery;
using Monal.Push.Tests.Fixtures;
using Npgsql;
using Quartz;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// Issue 19: several `serve` nodes on one PostgreSQL, as docs/operators.md "Running several nodes" sets them up: one
/// shared master key file, the default connection budget (no Maximum Pool Size in the connection string), each node
/// with its own component link (the test plays an XMPP server that spreads publishes over them, as ejabberd balances
/// the connections of one component domain).
/// </summary>
[Trait("Category", "Postgres")]
public sealed class ClusterTests
{
    private const string Domain = "push.cluster.test";
    private const string Secret = "cluster-s3cret";
    private const int Publishes = 1500;
    private static readonly TimeSpan JobInterval = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task TwoNodes_Should_DeliverEveryAcknowledgedPushOnce_RunEachJobOncePerCluster_AndHandOverTheProjections_When_FloodedAndOneStops()
    {
        await using var cluster = await Cluster.CreateAsync();
        var first = await cluster.StartNodeAsync("a");
        await WaitAsync(() => Task.FromResult(first.Daemon.IsLeader), "the first node leads the projections");
        var second = await cluster.StartNodeAsync("b");
        var firings = new FiringLog();
        await first.WatchFiringsAsync(firings, "a");
        await second.WatchFiringsAsync(firings, "b");
        Assert.Equal(ConnectionBudget.DefaultMaxPoolSize, first.Budget.PoolSize);
        Assert.Equal(ConnectionBudget.DefaultMaxPoolSize, second.Budget.PoolSize);
        Assert.False(second.Daemon.IsLeader);

        // The flood: distinct devices, alternating between the two links, written as fast as the sockets take them.
        var tokens = Enumerable.Range(0, Publishes).Select(_ => ServeHarness.NewToken()).ToArray();
        var writers = new[] { first, second }.Select((node, n) => Task.Run(async () =>
        {
            for (var i = n; i < tokens.Length; i += 2)
            {
                await node.Link.WriteAsync(ServeHarness.Publish("p" + i.ToString(CultureInfo.InvariantCulture), tokens[i]), CancellationToken.None);
            }
        })).ToArray();
        await Task.WhenAll(writers);
        await WaitAsync(() => Task.FromResult(cluster.Replies.Count == Publishes), $"a reply to each of the {Publishes} publishes");
        var acknowledged = cluster.Replies.Values.Where(r => r.IsResult).Select(r => tokens[int.Parse(r.Id[1..], CultureInfo.InvariantCulture)]).ToHashSet();
        Assert.Equal(Publishes, acknowledged.Count);

        // The first node stops (what SIGTERM does); the second takes over its claims and the projections.
        await first.DisposeAsync();
        await WaitAsync(() => Task.FromResult(second.Daemon.IsLeader), "the second node takes the projection leadership");
        await WaitAsync(async () => await cluster.CountAsync("select count(*) from push_queue") == 0, "every push delivered");

        // Every acknowledged push reached the mock APNs exactly once: one request per push id (apns-id) and per device.
        var requests = cluster.Apns.Requests;
        var apnsIds = requests.Select(r => r.Header("apns-id")).ToList();
        Assert.Equal(apnsIds.Count, apnsIds.Distinct(StringComparer.OrdinalIgnoreCase).Count());
        Assert.Equal(Publishes, requests.Count);
        Assert.True(acknowledged.SetEquals(requests.Select(r => r.DeviceToken!.ToLowerInvariant())), "each acknowledged device got its push");
        Assert.Equal(Publishes, await cluster.CountAsync("select count(*) from push_events where type = 'push_delivered.v1'"));
        Assert.Equal((long)Publishes, await cluster.CountAsync(
            "select count(*) from push_events e join push_events d on d.stream_id = e.stream_id and d.type = 'push_delivered.v1' where e.type = 'push_requested.v1'"));

        // The new leader projected everything, including what was appended after the first node left.
        await WaitAsync(async () => await cluster.CountAsync("select count(*) from push_log where outcome = 'delivered'") == Publishes,
            "the push log, projected by the second node, shows every delivery");

        // Both schedulers were in one Quartz cluster, and each firing of a trigger ran on one node only: a job run by
        // both nodes for the same firing would show its scheduled time twice. The flood may take less time than two
        // intervals: wait (a signal, not a sleep) until every job has fired twice and recorded its runs.
        List<RetentionRun> runs = [];
        await WaitAsync(async () =>
        {
            runs = [.. (await second.Store.ReadStreamAsync(SystemStreams.Retention)).Select(e => (RetentionRun)e.Data)];
            var watched = firings.Snapshot();
            return runs.Count > 0 && runs.GroupBy(r => r.Job).All(job => job.Count() >= 2)
                && RetentionJobNames.All.All(job => watched.Count(f => f.Job == job) >= 2);
        }, "every job fired at least twice while watched");
        Assert.Equal(2L, await cluster.CountAsync("select count(distinct instance_name) from qrtz_scheduler_state"));
        var fired = firings.Snapshot();
        Assert.Equal(RetentionJobNames.All.Order(StringComparer.Ordinal), fired.Select(f => f.Job).Distinct().Order(StringComparer.Ordinal));
        var twice = fired.GroupBy(f => (f.Job, f.ScheduledAt)).Where(g => g.Count() > 1).Select(g => $"{g.Key.Job} at {g.Key.ScheduledAt:O} on {string.Join(" and ", g.Select(f => f.Node))}");
        Assert.Empty(twice);

        Assert.All(runs.GroupBy(r => r.Job), job => Assert.True(job.Count() >= 2, $"{job.Key} ran {job.Count()} times"));
    }

    [Fact]
    public async Task Serve_Should_RefuseToStartNamingTheFix_When_ItsMasterKeyIsNotTheDatabases()
    {
        await using var cluster = await Cluster.CreateAsync();
        await cluster.StartNodeAsync("a");
        var sharedKey = await File.ReadAllTextAsync(cluster.SharedKeyFile);

        // A second node with a data folder of its own and no key configured: exactly what issue 19 saw. It would make
        // a key of its own and later fail to decrypt the tokens the first node stored; now it does not start at all.
        var lonely = Directory.CreateTempSubdirectory("monal-cluster-lonely-").FullName;
        try
        {
            var refused = await Assert.ThrowsAsync<MasterKeyException>(() => MonalHost.StartAsync(
                [.. cluster.Switches(cluster.Xmpp.Port, sharedKey: false), $"--Data:Path={lonely}"], HostRole.Serve, CancellationToken.None));
            var ownKey = await File.ReadAllTextAsync(Path.Combine(lonely, "master.key"));
            Assert.Contains("is not the key of this database", refused.Message, StringComparison.Ordinal);
            Assert.Contains("so this start made a new key", refused.Message, StringComparison.Ordinal);
            Assert.Contains(Path.Combine(lonely, "master.key"), refused.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(ownKey.Trim(), refused.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(sharedKey.Trim(), refused.Message, StringComparison.Ordinal);

            // An admin verb composes the same host, so it is refused too (a wrong key given as a setting this time).
            var admin = await Assert.ThrowsAsync<MasterKeyException>(() => MonalHost.StartAsync(
                [.. cluster.Switches(cluster.Xmpp.Port), $"--Ledger:MasterKey={Convert.ToBase64String(new byte[32])}"],
                HostRole.Admin, CancellationToken.None));
            Assert.Contains("set Ledger:MasterKey to the key the other nodes use", admin.Message, StringComparison.Ordinal);

            // With the shared key file the same folder starts fine.
            File.Copy(cluster.SharedKeyFile, Path.Combine(lonely, "master.key"), overwrite: true);
            await using var joined = await MonalHost.StartAsync(
                [.. cluster.Switches(cluster.Xmpp.Port, sharedKey: false), $"--Data:Path={lonely}"], HostRole.Admin, CancellationToken.None);
            Assert.Equal(1L, await cluster.CountAsync("select count(*) from master_key_check"));
        }
        finally
        {
            Directory.Delete(lonely, recursive: true);
        }
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within {seconds} s: {what}");
            await Task.Delay(100);
        }
    }

    /// <summary>One database, one mock APNs, one shared key file, and the nodes started on them.</summary>
    private sealed class Cluster : IAsyncDisposable
    {
        private readonly ProviderKeyFile _key;
        private readonly string _folder;
        private readonly List<Node> _nodes = [];

        private Cluster(ProviderKeyFile key, MockApnsServer apns, string connectionString, string folder)
        {
            _key = key;
            Apns = apns;
            ConnectionString = connectionString;
            _folder = folder;
            Db = NpgsqlDataSource.Create(connectionString);
            Xmpp = new ComponentServer(Domain, Secret);
            Xmpp.Start();
        }

        public MockApnsServer Apns { get; }

        public string ConnectionString { get; }

        public NpgsqlDataSource Db { get; }

        public ComponentServer Xmpp { get; }

        public string SharedKeyFile => Path.Combine(_folder, "shared", "master.key");

        public ConcurrentDictionary<string, Reply> Replies { get; } = new();

        public static async Task<Cluster> CreateAsync()
        {
            var key = new ProviderKeyFile();
            var apns = await MockApnsServer.StartAsync(new MockApnsOptions
            {
                UseTls = false,
                Topic = "im.monal.test",
                ProviderPublicKeyPem = key.PublicKeyPem,
                KeyId = key.KeyId,
                TeamId = key.TeamId,
            });
            // The operator's connection string names no pool size: the default budget applies.
            var connection = new NpgsqlConnectionStringBuilder(await TestDatabase.CreateEmptyDatabaseAsync());
            connection.Remove("Maximum Pool Size");
            return new Cluster(key, apns, connection.ConnectionString, Directory.CreateTempSubdirectory("monal-cluster-").FullName);
        }

        /// <summary>A node's settings; <paramref name="sharedKey"/> false leaves the key to its data folder.</summary>
        public string[] Switches(int xmppPort, bool sharedKey = true) =>
        [
            $"--ConnectionStrings:Ledger={ConnectionString}", "--Http:Urls=http://127.0.0.1:0",
            sharedKey ? $"--Ledger:MasterKeyFile={SharedKeyFile}" : "--Ledger:MigrateOnStart=true",
            "--Xmpp:Component:Host=127.0.0.1", $"--Xmpp:Component:Port={xmppPort}",
            $"--Xmpp:Component:Domain={Domain}", $"--Xmpp:Component:Secret={Secret}",
            "--PushModules:monalTest:Topic=im.monal.test", $"--PushModules:monalTest:Endpoint={Apns.Endpoint}",
            $"--PushModules:monalTest:TeamId={_key.TeamId}", $"--PushModules:monalTest:KeyId={_key.KeyId}",
            $"--PushModules:monalTest:KeyFile={_key.Path}",
            $"--Retention:PurgeInterval={JobInterval}", $"--Retention:InvalidTokenInterval={JobInterval}",
            "--Projections:LeaderRetry=00:00:00.250", "--Delivery:PollInterval=00:00:00.250",
            // The flood must be acknowledged in full; on a slow machine its first publishes (each creating a device)
            // wait long enough for the overload check to refuse some at once, which the abuse tests cover.
            "--Limits:QueueDelayTarget=00:00:00",
        ];

        /// <summary>Starts a node with a data folder of its own (logs) and the shared key file, and accepts its link.</summary>
        public async Task<Node> StartNodeAsync(string name)
        {
            var data = Directory.CreateDirectory(Path.Combine(_folder, name)).FullName;
            var host = await MonalHost.StartAsync([.. Switches(Xmpp.Port), $"--Data:Path={data}"], HostRole.Serve, CancellationToken.None);
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            var link = await Xmpp.AcceptAsync(timeout.Token);
            _ = link.ReadRepliesAsync(r => Replies[r.Id] = r, CancellationToken.None);
            var node = new Node(host, link);
            _nodes.Add(node);
            return node;
        }

        public async Task<long> CountAsync(string sql)
        {
            await using var cmd = Db.CreateCommand(sql);
            return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var node in _nodes)
            {
                await node.DisposeAsync();
            }

            Xmpp.Dispose();
            await Apns.DisposeAsync();
            await Db.DisposeAsync();
            _key.Dispose();
            try
            {
                Directory.Delete(_folder, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
        }
    }

    /// <summary>One job started by one node for one scheduled firing of its trigger.</summary>
    private sealed record Firing(string Job, DateTimeOffset? ScheduledAt, string Node);

    /// <summary>The firings seen by every node's listener.</summary>
    private sealed class FiringLog
    {
        private readonly ConcurrentQueue<Firing> _firings = new();

        public void Add(Firing firing) => _firings.Enqueue(firing);

        public Firing[] Snapshot() => [.. _firings];
    }

    private sealed class FiringListener(FiringLog log, string node) : IJobListener
    {
        public string Name => "cluster-test-" + node;

        public ValueTask JobToBeExecuted(IJobExecutionContext context, CancellationToken cancellationToken = default)
        {
            log.Add(new Firing(context.JobDetail.Key.Name, context.ScheduledFireTimeUtc, node));
            return ValueTask.CompletedTask;
        }

        public ValueTask JobExecutionVetoed(IJobExecutionContext context, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask JobWasExecuted(IJobExecutionContext context, JobExecutionException? jobException, CancellationToken cancellationToken = default) =>
            ValueTask.CompletedTask;
    }

    /// <summary>A running `serve` and the link the test's XMPP server accepted from it.</summary>
    private sealed class Node(MonalHost host, ComponentLink link) : IAsyncDisposable
    {
        private bool _stopped;

        public ComponentLink Link => link;

        internal ProjectionDaemon Daemon => host.Services.GetRequiredService<ProjectionDaemon>();

        public ConnectionBudget Budget => host.Services.GetRequiredService<ConnectionBudget>();

        public Monal.Push.Ledger.EventStore.EventStore Store => host.Services.GetRequiredService<Monal.Push.Ledger.EventStore.EventStore>();

        /// <summary>Records every retention job this node's scheduler starts from now on, with the firing it serves.</summary>
        public async Task WatchFiringsAsync(FiringLog log, string name)
        {
            var scheduler = await host.Services.GetRequiredService<ISchedulerFactory>().LookupScheduler(RetentionScheduling.SchedulerName)
                ?? throw new InvalidOperationException("the node has no retention scheduler");
            scheduler.ListenerManager.AddJobListener(new FiringListener(log, name), [GroupMatcher<JobKey>.GroupEquals(RetentionScheduling.Group)]);
        }

        public async ValueTask DisposeAsync()
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
            await host.DisposeAsync();
            await link.DisposeAsync();
        }
    }
}
