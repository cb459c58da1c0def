namespace Monal.Push.Tests.Cli;

/// <summary>
/// Issue 15, points 2 and 3: Apple's gateway goes silent for 20 s in the middle of a flood (it accepts every stream
/// and answers none), then answers again. Publishes keep being acknowledged (the ledger is the buffer), every request
/// meets its deadline, the stuck connection is replaced, and afterwards every acknowledged push is delivered with its
/// original apns-id, and no apns-id is answered 200 twice.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class ApnsStallTests
{
    [Fact]
    public async Task Serve_Should_DeliverEveryAcknowledgedPushOnceWithItsApnsId_When_ApnsIsSilentFor20Seconds()
    {
        // The overload check is off: 500 first publishes at once from a test process whose code is not yet compiled
        // can be answered wait/resource-constraint, which is right for serve but not what this test is about.
        await using var harness = await ServeHarness.CreateAsync(
            null, null, "--PushModules:monalTest:RequestTimeout=00:00:02", "--Delivery:RetryMaxDelay=00:00:04",
            "--Limits:QueueDelayTarget=00:00:00");
        await harness.StartAsync();

        var tokens = Enumerable.Range(0, 900).Select(_ => ServeHarness.NewToken()).ToArray();
        await PublishAsync(harness, tokens, 0, 200);
        await ServeHarness.WaitAsync(async () => await harness.CountAsync("select count(*) from push_queue") == 0, seconds: 30);

        harness.Apns.StallFor(TimeSpan.FromSeconds(20));
        await PublishAsync(harness, tokens, 200, 700);
        Assert.True(harness.Apns.IsSilent, "the publishes were acknowledged while APNs was silent");

        await ServeHarness.WaitAsync(() => Task.FromResult(!harness.Apns.IsSilent), seconds: 40);
        await PublishAsync(harness, tokens, 700, 900);
        await ServeHarness.WaitAsync(async () => await harness.CountAsync("select count(*) from push_queue") == 0, seconds: 40);

        Assert.All(harness.Replies.Values, r => Assert.True(r.IsResult, $"{r.Id}: {r.ErrorType}/{r.Condition}"));
        var requests = harness.Apns.Requests;
        await Task.WhenAll(requests.Select(r => r.Done));
        Assert.True(harness.Apns.AbandonedByClient > 0, "requests met their deadline during the stall");
        Assert.True(requests.Select(r => r.ConnectionId).Distinct().Count() > 1, "the stuck connection was replaced");

        var answered = requests.Where(r => r.Status == 200).ToList();
        var twice = answered.GroupBy(r => r.Header("apns-id")).Where(g => g.Count() > 1).ToList();
        Assert.True(twice.Count == 0, "answered 200 twice: " + string.Join("; ", twice.Select(g => g.Key + " = " + string.Join(", ",
            requests.Where(r => r.Header("apns-id") == g.Key).Select(r =>
                $"#{r.Sequence} at {r.ReceivedAt:HH:mm:ss.fff} on {r.ConnectionId} status {r.Status} {r.Reason}")))) +
            $" ({harness.Apns.AbandonedByClient} requests abandoned by the client)");
        var byToken = answered.GroupBy(r => r.DeviceToken!).ToDictionary(g => g.Key, g => Assert.Single(g).Header("apns-id"));
        var requested = await harness.ScalarAsync(
            "select string_agg(data->>'push_id', ',') from push_events where type = 'push_requested.v1'");
        var pushIds = requested.Split(',').ToHashSet();
        Assert.Equal(tokens.Length, pushIds.Count);
        Assert.All(tokens, t => Assert.True(byToken.TryGetValue(t, out var id) && pushIds.Contains(id!), "delivered with the apns-id of its PushRequested"));
    }

    private static async Task PublishAsync(ServeHarness harness, string[] tokens, int from, int to)
    {
        for (var i = from; i < to; i++)
        {
            await harness.Link!.WriteAsync(ServeHarness.Publish($"p{i}", tokens[i]), CancellationToken.None);
        }

        await ServeHarness.WaitAsync(() => Task.FromResult(harness.Replies.Count >= to), seconds: 30);
    }
}
