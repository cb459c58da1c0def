using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Options;
using Monal.Push.Cli.Hosting;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Load.Listening;
using Monal.Push.MockApns;
using Monal.Push.Tests.Delivery;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// Issue 9: stopping `serve` under load (what SIGTERM does: the host's graceful stop) loses nothing. Every publish
/// answered `result` is in the ledger, and a second `serve` on the same database delivers every one of them.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class GracefulShutdownTests
{
    private const string Domain = "push.shutdown.test";
    private const string Secret = "s3cret";

    [Fact]
    public async Task Serve_Should_LoseNoAcknowledgedPush_When_StoppedUnderLoad()
    {
        using var key = new ProviderKeyFile();
        await using var apns = await MockApnsServer.StartAsync(new MockApnsOptions
        {
            UseTls = false,
            Topic = "im.monal.test",
            ProviderPublicKeyPem = key.PublicKeyPem,
            KeyId = key.KeyId,
            TeamId = key.TeamId,
            Latency = TimeSpan.FromMilliseconds(20),
            RecordRequests = false,
        });
        var connectionString = await TestDatabase.CreateEmptyDatabaseAsync();
        var dataPath = Directory.CreateTempSubdirectory("monal-shutdown-").FullName;
        using var xmpp = new ComponentServer(Domain, Secret);
        xmpp.Start();
        string[] switches =
        [
            $"--ConnectionStrings:Ledger={connectionString}", $"--Data:Path={dataPath}", "--Http:Urls=http://127.0.0.1:0",
            "--Xmpp:Component:Host=127.0.0.1", $"--Xmpp:Component:Port={xmpp.Port}",
            $"--Xmpp:Component:Domain={Domain}", $"--Xmpp:Component:Secret={Secret}",
            "--PushModules:monalTest:Topic=im.monal.test", $"--PushModules:monalTest:Endpoint={apns.Endpoint}",
            $"--PushModules:monalTest:TeamId={key.TeamId}", $"--PushModules:monalTest:KeyId={key.KeyId}",
            $"--PushModules:monalTest:KeyFile={key.Path}", "--Retention:Scheduler=false",
        ];

        var first = await MonalHost.StartAsync(switches, HostRole.Serve, CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await using var link = await xmpp.AcceptAsync(timeout.Token);
        var replies = new ConcurrentDictionary<string, Reply>();
        var reading = link.ReadRepliesAsync(r => replies[r.Id] = r, timeout.Token);
        var tokens = Enumerable.Range(0, 600).Select(_ => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))).ToArray();

        Task? stopping = null;
        for (var i = 0; i < tokens.Length; i++)
        {
            if (i == tokens.Length / 2)
            {
                stopping = first.DisposeAsync().AsTask(); // graceful stop while publishes are in flight
            }

            try
            {
                await link.WriteAsync(Publish(i, tokens[i]), timeout.Token);
            }
            catch (IOException)
            {
                break; // the link closed: the rest were never sent
            }
        }

        await stopping!;
        await Task.WhenAny(reading, Task.Delay(TimeSpan.FromSeconds(2)));

        var acknowledged = replies.Values.Where(r => r.IsResult).Select(r => int.Parse(r.Id[1..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(acknowledged.Count > 0, "some publishes were answered before the stop");
        var hash = new KeyedHash(new MasterKey(Options.Create(new LedgerOptions()), Options.Create(new DataOptions { Path = dataPath })));
        await using var db = NpgsqlDataSource.Create(connectionString);
        foreach (var i in acknowledged)
        {
            var device = hash.StatelessDeviceId("monalTest", tokens[i]);
            Assert.Equal(1L, await Count(db, "select count(*) from push_events where stream_id = $1 and type = 'push_requested.v1'", device));
        }

        // A second serve on the same database finishes what the first left: every acknowledged push is delivered.
        await using (var second = await MonalHost.StartAsync(switches, HostRole.Serve, CancellationToken.None))
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (await Count(db, "select count(*) from push_queue") > 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }

        foreach (var i in acknowledged)
        {
            var device = hash.StatelessDeviceId("monalTest", tokens[i]);
            Assert.Equal(1L, await Count(db, "select count(*) from push_events where stream_id = $1 and type = 'push_delivered.v1'", device));
        }

        Directory.Delete(dataPath, recursive: true);
    }

    private static byte[] Publish(int i, string token) => Encoding.UTF8.GetBytes($"""
        <iq type='set' from='example.org' to='{Domain}' id='p{i}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{token}'><item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'><field type='hidden' var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field><field var='message-count'><value>1</value></field></x></notification></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='pushModule'><value>monalTest</value></field></x></publish-options></pubsub></iq>
        """);

    private static async Task<long> Count(NpgsqlDataSource db, string sql, params object[] args)
    {
        await using var cmd = db.CreateCommand(sql);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        return (long)(await cmd.ExecuteScalarAsync())!;
    }
}
