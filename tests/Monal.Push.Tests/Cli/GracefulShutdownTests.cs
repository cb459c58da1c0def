using Microsoft.Extensions.Options;
using Monal.Push.Cli.Hosting;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Crypto;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// Issue 9: stopping `serve` under load (what SIGTERM does: the host's graceful stop) loses nothing. Every publish
/// answered `result` is in the ledger, and a second `serve` on the same database delivers every one of them.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class GracefulShutdownTests
{
    [Fact]
    public async Task Serve_Should_LoseNoAcknowledgedPush_When_StoppedUnderLoad()
    {
        await using var harness = await ServeHarness.CreateAsync(apnsLatency: TimeSpan.FromMilliseconds(20));
        await harness.StartAsync();
        var tokens = Enumerable.Range(0, 600).Select(_ => ServeHarness.NewToken()).ToArray();

        Task? stopping = null;
        for (var i = 0; i < tokens.Length; i++)
        {
            if (i == tokens.Length / 2)
            {
                // Writing is faster than serving: without this wait the stop could begin before the first reply, and
                // the test would prove nothing about acknowledged pushes. The second half is still written during it.
                await ServeHarness.WaitAsync(() => Task.FromResult(harness.Replies.Values.Any(r => r.IsResult)), seconds: 30);
                stopping = harness.StopServeAsync(); // graceful stop while publishes are in flight
            }

            try
            {
                await harness.Link!.WriteAsync(ServeHarness.Publish($"p{i}", tokens[i]), CancellationToken.None);
            }
            catch (IOException)
            {
                break; // the link closed: the rest were never sent
            }
        }

        await stopping!;
        // Every reply serve wrote before closing its stream has been read once the stream has ended.
        await harness.RepliesRead.ContinueWith(_ => { }, TaskScheduler.Default).WaitAsync(TimeSpan.FromSeconds(30));

        var acknowledged = harness.Replies.Values.Where(r => r.IsResult)
            .Select(r => int.Parse(r.Id[1..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(acknowledged.Count > 0, "some publishes were answered before the stop");
        var hash = new KeyedHash(new MasterKey(Options.Create(new LedgerOptions()), Options.Create(new DataOptions { Path = harness.DataPath })));
        foreach (var i in acknowledged)
        {
            Assert.Equal(1L, await harness.CountAsync(
                "select count(*) from push_events where stream_id = $1 and type = 'push_requested.v1'", hash.StatelessDeviceId("monalTest", tokens[i])));
        }

        // A second serve on the same database finishes what the first left: every acknowledged push is delivered.
        await using (var second = await MonalHost.StartAsync(harness.Switches, HostRole.Serve, CancellationToken.None))
        {
            await ServeHarness.WaitAsync(async () => await harness.CountAsync("select count(*) from push_queue") == 0);
        }

        foreach (var i in acknowledged)
        {
            Assert.Equal(1L, await harness.CountAsync(
                "select count(*) from push_events where stream_id = $1 and type = 'push_delivered.v1'", hash.StatelessDeviceId("monalTest", tokens[i])));
        }
    }
}
