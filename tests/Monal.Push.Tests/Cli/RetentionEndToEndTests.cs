using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Cli.Hosting;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Load.Listening;
using Monal.Push.MockApns;
using Monal.Push.Purge.Scheduling;
using Monal.Push.Tests.Delivery;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// Issue 6's "done when": after a run of the whole pipeline, with the clock moved 15 days ahead, the retention jobs
/// leave no push event, push-log row or log file older than 14 days, the token Apple invalidated is gone from a
/// full dump, and RetentionRun events say what was deleted.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class RetentionEndToEndTests
{
    private const string Domain = "push.retention.test";
    private const string Secret = "s3cret";

    [Fact]
    public async Task PurgeRun_Should_LeaveNothingOlderThanTheWindow_When_TheClockMovesFifteenDaysAhead()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        using var key = new ProviderKeyFile();
        await using var apns = await MockApnsServer.StartAsync(new MockApnsOptions
        {
            UseTls = false,
            Topic = "im.monal.test",
            ProviderPublicKeyPem = key.PublicKeyPem,
            KeyId = key.KeyId,
            TeamId = key.TeamId,
        });
        var connectionString = await TestDatabase.CreateEmptyDatabaseAsync();
        var dataPath = Directory.CreateTempSubdirectory("monal-retention-").FullName;
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
        var tokens = Enumerable.Range(0, 20).Select(_ => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))).ToArray();
        var invalid = tokens[0];
        apns.RespondToToken(invalid, 410, "Unregistered", clock.GetUtcNow().AddMinutes(1));

        await using var host = await MonalHost.StartAsync(switches, HostRole.Serve, CancellationToken.None,
            services => services.AddSingleton<TimeProvider>(clock));
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await using var link = await xmpp.AcceptAsync(timeout.Token);
        var replies = new ConcurrentDictionary<string, Reply>();
        _ = link.ReadRepliesAsync(r => replies[r.Id] = r, timeout.Token);
        for (var i = 0; i < tokens.Length; i++)
        {
            await link.WriteAsync(Encoding.UTF8.GetBytes(
                $"<iq type='set' from='example.org' to='{Domain}' id='p{i}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>" +
                $"<publish node='{tokens[i]}'><item><notification xmlns='urn:xmpp:push:0'/></item></publish><publish-options>" +
                "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
                "<field var='pushModule'><value>monalTest</value></field></x></publish-options></pubsub></iq>"), timeout.Token);
        }

        await using var db = NpgsqlDataSource.Create(connectionString);
        await WaitAsync(async () => replies.Count == tokens.Length
            && await Count(db, "select count(*) from push_events where type = 'push_delivered.v1'") == tokens.Length - 1
            && await Count(db, "select count(*) from events where type = 'token_invalidated.v1'") == 1
            && await Count(db, "select count(*) from push_log where outcome <> 'pending'") == tokens.Length);
        Assert.All(replies.Values, r => Assert.True(r.IsResult));
        var dumpBefore = await Dump(connectionString);
        var invalidCipher = await Scalar(db, "select data->>'encrypted_token' from events where type = 'device_registered.v1' and stream_id = (select stream_id from events where type = 'token_invalidated.v1')");
        Assert.Contains(invalidCipher, dumpBefore, StringComparison.Ordinal);

        clock.Advance(TimeSpan.FromDays(15));
        var cutoff = clock.GetUtcNow().AddDays(-14);
        var runs = await host.Services.GetRequiredService<RetentionJobs>().RunAllAsync(dryRun: false, CancellationToken.None);

        Assert.All(runs, r => Assert.Equal(RetentionJobs.Succeeded, r.Outcome));
        Assert.Equal(0L, await Count(db, "select count(*) from push_events where \"timestamp\" < $1", cutoff));
        Assert.Equal(0L, await Count(db, "select count(*) from push_log where requested_at < $1", cutoff));
        Assert.False(File.Exists(Path.Combine(dataPath, "logs", $"monal-push-{clock.GetUtcNow().AddDays(-15):yyyyMMdd}.log")),
            "the log file of the run's day is older than the window and must be gone");
        var dump = await Dump(connectionString);
        Assert.DoesNotContain(invalid, dump, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(invalidCipher, dump, StringComparison.Ordinal);
        Assert.Equal(tokens.Length - 1, await Count(db, "select count(*) from devices"));

        var evidence = (await host.Services.GetRequiredService<EventStore>().ReadStreamAsync(SystemStreams.Retention))
            .Select(e => e.Data).OfType<RetentionRun>().ToList();
        Assert.Equal(RetentionJobNames.All.Order(), evidence.Select(r => r.Job).Order());
        // The invalid-token job ran first and erased the invalidated device with its stream; the purge took the rest.
        Assert.Equal((tokens.Length - 1) * 2L, evidence.Single(r => r.Job == RetentionJobNames.PushLogs).Deleted["push_events"]);
        Assert.Equal(1L, evidence.Single(r => r.Job == RetentionJobNames.InvalidTokens).Deleted["devices_erased"]);
        Assert.True(evidence.Single(r => r.Job == RetentionJobNames.LogFiles).Deleted["log_files"] >= 1);
    }

    private static async Task WaitAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the pipeline did not settle within 60 s");
            await Task.Delay(200);
        }
    }

    private static async Task<long> Count(NpgsqlDataSource db, string sql, params object[] args) =>
        Convert.ToInt64(await Scalar(db, sql, args), System.Globalization.CultureInfo.InvariantCulture);

    private static async Task<string> Scalar(NpgsqlDataSource db, string sql, params object[] args)
    {
        await using var cmd = db.CreateCommand(sql);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        return Convert.ToString(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture)!;
    }

    private static async Task<string> Dump(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        var psi = new System.Diagnostics.ProcessStartInfo(Path.Combine(Monal.Push.Ledger.Embedded.EmbeddedPostgres.FindBinaries(), "pg_dump"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { "-h", b.Host!, "-p", b.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", b.Username!, "-d", b.Database! })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["PGPASSWORD"] = b.Password;
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.Equal(0, p.ExitCode);
        return await output;
    }
}
