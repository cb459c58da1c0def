using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Ingest.Component;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// Issue 15, point 5: the XMPP server restarts under `serve`. The component link comes back within 5 s of the server
/// listening again (with backoff while it was down), every publish answered before the drop is delivered once, and a
/// stanza cut off by the drop is never recorded, so nothing is replayed as a second push.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class XmppRestartTests
{
    [Fact]
    public async Task Serve_Should_ReconnectWithinFiveSecondsAndDeliverEachAcknowledgedPushOnce_When_TheXmppServerRestarts()
    {
        await using var harness = await ServeHarness.CreateAsync();
        await harness.StartAsync();
        var connection = harness.Host!.Services.GetRequiredService<ComponentConnection>();
        var before = Enumerable.Range(0, 50).Select(_ => ServeHarness.NewToken()).ToArray();
        for (var i = 0; i < before.Length; i++)
        {
            await harness.Link!.WriteAsync(ServeHarness.Publish($"b{i}", before[i]), CancellationToken.None);
        }

        await ServeHarness.WaitAsync(() => Task.FromResult(harness.Replies.Count == before.Length), seconds: 30);

        var cut = ServeHarness.NewToken();
        var half = ServeHarness.Publish("cut", cut);
        var reconnects = connection.Reconnects;
        // Down long enough for the backoff to reach its ceiling: five attempts (about 6 s).
        var elapsed = await harness.RestartXmppServerAsync(half.AsMemory(0, half.Length / 2), () =>
            ServeHarness.WaitAsync(() => Task.FromResult(connection.Reconnects >= reconnects + 5), seconds: 60));
        Assert.True(elapsed < TimeSpan.FromSeconds(6), $"the link came back {elapsed} after the server listened again");

        var after = Enumerable.Range(0, 50).Select(_ => ServeHarness.NewToken()).ToArray();
        for (var i = 0; i < after.Length; i++)
        {
            await harness.Link!.WriteAsync(ServeHarness.Publish($"a{i}", after[i]), CancellationToken.None);
        }

        await ServeHarness.WaitAsync(() => Task.FromResult(harness.Replies.Count == before.Length + after.Length), seconds: 30);
        Assert.All(harness.Replies.Values, r => Assert.True(r.IsResult, r.Id));
        await ServeHarness.WaitAsync(async () => await harness.CountAsync("select count(*) from push_queue") == 0);

        Assert.Equal(before.Length + after.Length, await harness.CountAsync("select count(*) from push_events where type = 'push_requested.v1'"));
        var answered = harness.Apns.Requests.Where(r => r.Status == 200).GroupBy(r => r.DeviceToken!).ToDictionary(g => g.Key, g => g.Count());
        Assert.All(before.Concat(after), t => Assert.Equal(1, answered.GetValueOrDefault(t)));
        Assert.False(answered.ContainsKey(cut), "the stanza cut off by the restart reached nothing");
    }
}
