using Monal.Push.Delivery.Dispatching;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;

namespace Monal.Push.Tests.Delivery.Dispatching;

[Trait("Category", "Postgres")]
public sealed class PushDispatcherTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Dispatcher_Should_SendWithTokenTopicHeadersAndJwtAndRecordDelivery_When_PushRequested(bool tls)
    {
        await using var h = await DispatchHarness.CreateAsync(tls);
        var node = await h.Node().StartAsync();
        var (device, token) = await h.AddDeviceAsync();

        var push = await DispatchHarness.RequestAsync(node.Store, device);
        var outcomes = await DispatchHarness.WaitForFinalAsync(node.Store, device, push);

        var delivered = Assert.IsType<PushDelivered>(Assert.Single(outcomes));
        Assert.Equal(push, delivered.ApnsId);
        Assert.Equal(device, delivered.DeviceId);
        Assert.True(delivered.LatencyMs >= 0);
        var request = Assert.Single(h.Mock.Requests);
        Assert.Equal("/3/device/" + token, request.Path);
        Assert.Equal(tls, request.IsHttps);
        Assert.Equal("HTTP/2", request.Protocol);
        Assert.Equal(DispatchHarness.Topic, request.Header("apns-topic"));
        Assert.Equal(push.ToString("D"), request.Header("apns-id"));
        Assert.Equal("alert", request.Header("apns-push-type"));
        Assert.Equal("10", request.Header("apns-priority"));
        Assert.NotNull(request.ProviderToken);
        Assert.True(request.ProviderToken.SignatureValid);
        Assert.Equal(200, request.Status);
        Assert.Equal(0, await h.QueueCountAsync(push));
        Assert.Equal(1, node.Dispatcher.Delivered);
    }

    [Fact]
    public async Task Dispatcher_Should_RecordTokenInvalidatedWithAppleTimestamp_When_AppleAnswers410()
    {
        await using var h = await DispatchHarness.CreateAsync();
        var node = await h.Node().StartAsync();
        var (device, token) = await h.AddDeviceAsync();
        var since = DateTimeOffset.FromUnixTimeMilliseconds(1_760_000_000_123);
        h.Mock.RespondToToken(token, 410, "Unregistered", since);

        var push = await DispatchHarness.RequestAsync(node.Store, device);
        var outcomes = await DispatchHarness.WaitForFinalAsync(node.Store, device, push);

        var invalidated = Assert.IsType<TokenInvalidated>(Assert.Single(outcomes));
        Assert.Equal("Unregistered", invalidated.Reason);
        Assert.Equal(since, invalidated.AppleTimestamp);
        Assert.Equal(push, invalidated.PushId);
        Assert.Single(h.Mock.Requests);
        Assert.Equal(0, await h.QueueCountAsync(push));
    }

    [Theory]
    [InlineData("BadDeviceToken")]
    [InlineData("DeviceTokenNotForTopic")]
    public async Task Dispatcher_Should_RecordTokenRejectedWithoutRetry_When_AppleRejectsToken(string reason)
    {
        await using var h = await DispatchHarness.CreateAsync();
        var node = await h.Node().StartAsync();
        var (device, token) = await h.AddDeviceAsync();
        h.Mock.RespondToToken(token, 400, reason);

        var push = await DispatchHarness.RequestAsync(node.Store, device);
        var outcomes = await DispatchHarness.WaitForFinalAsync(node.Store, device, push);

        var rejected = Assert.IsType<TokenRejected>(Assert.Single(outcomes));
        Assert.Equal(reason, rejected.Reason);
        await node.WaitForPollsAsync();
        Assert.Single(h.Mock.Requests);
        Assert.Equal(0, await h.QueueCountAsync(push));
    }

    [Theory]
    [InlineData(429, "TooManyRequests")]
    [InlineData(500, "InternalServerError")]
    [InlineData(503, "ServiceUnavailable")]
    public async Task Dispatcher_Should_RetryWithSameApnsIdThenDeliver_When_AppleFailsTransiently(int status, string reason)
    {
        await using var h = await DispatchHarness.CreateAsync();
        var node = await h.Node().StartAsync();
        var (device, _) = await h.AddDeviceAsync();
        h.Mock.RespondToNext(2, status, reason);

        var push = await DispatchHarness.RequestAsync(node.Store, device);
        var outcomes = await DispatchHarness.WaitForFinalAsync(node.Store, device, push);

        Assert.Equal(3, outcomes.Count);
        Assert.All(outcomes.Take(2), o =>
        {
            var failed = Assert.IsType<PushFailed>(o);
            Assert.True(failed.Transient);
            Assert.Equal(status, failed.Status);
            Assert.Equal(reason, failed.Reason);
        });
        Assert.IsType<PushDelivered>(outcomes[2]);
        Assert.Equal(3, h.Mock.Requests.Count);
        Assert.All(h.Mock.Requests, r => Assert.Equal(push.ToString("D"), r.Header("apns-id")));
        Assert.Equal(0, await h.QueueCountAsync(push));
    }

    [Fact]
    public async Task Dispatcher_Should_RetryThenDeliver_When_ConnectionIsDropped()
    {
        await using var h = await DispatchHarness.CreateAsync(tls: true);
        var node = await h.Node().StartAsync();
        var (device, _) = await h.AddDeviceAsync();
        h.Mock.DropConnectionNext();

        var push = await DispatchHarness.RequestAsync(node.Store, device);
        var outcomes = await DispatchHarness.WaitForFinalAsync(node.Store, device, push);

        var failed = Assert.IsType<PushFailed>(outcomes[0]);
        Assert.True(failed.Transient);
        Assert.Equal(0, failed.Status);
        Assert.IsType<PushDelivered>(outcomes[^1]);
        Assert.Equal("ConnectionDropped", h.Mock.Requests[0].Reason);
    }

    [Fact]
    public async Task Dispatcher_Should_RecordFinalFailureWithoutRetry_When_AppleAnswersBadTopic()
    {
        await using var h = await DispatchHarness.CreateAsync();
        var node = await h.Node().StartAsync();
        var (device, _) = await h.AddDeviceAsync();
        h.Mock.RespondToNext(1, 400, "BadTopic");

        var push = await DispatchHarness.RequestAsync(node.Store, device);
        var outcomes = await DispatchHarness.WaitForFinalAsync(node.Store, device, push);

        var failed = Assert.IsType<PushFailed>(Assert.Single(outcomes));
        Assert.False(failed.Transient);
        Assert.Equal(400, failed.Status);
        Assert.Equal("BadTopic", failed.Reason);
        await node.WaitForPollsAsync();
        Assert.Single(h.Mock.Requests);
        Assert.Equal(0, await h.QueueCountAsync(push));
    }

    [Fact]
    public async Task Dispatcher_Should_StopRetryingWithExpiredFailure_When_PushExpires()
    {
        await using var h = await DispatchHarness.CreateAsync();
        var node = await h.Node().StartAsync();
        var (device, token) = await h.AddDeviceAsync();
        h.Mock.RespondToToken(token, 503, "ServiceUnavailable");

        var push = await DispatchHarness.RequestAsync(node.Store, device, expiresIn: TimeSpan.FromSeconds(1.5));
        var outcomes = await DispatchHarness.WaitForFinalAsync(node.Store, device, push);

        var final = Assert.IsType<PushFailed>(outcomes[^1]);
        Assert.False(final.Transient);
        Assert.Equal(PushDispatcher.ReasonExpired, final.Reason);
        Assert.Equal(503, final.Status);
        Assert.True(outcomes.Count >= 2);
        Assert.All(outcomes.SkipLast(1), o => Assert.True(Assert.IsType<PushFailed>(o).Transient));
        var sent = h.Mock.RequestCount;
        await node.WaitForPollsAsync();
        Assert.Equal(sent, h.Mock.RequestCount);
        Assert.Equal(0, await h.QueueCountAsync(push));
    }

    [Fact]
    public async Task Dispatcher_Should_WaitUntilNotBefore_When_PushIsCoalesced()
    {
        await using var h = await DispatchHarness.CreateAsync();
        var node = await h.Node().StartAsync();
        var (device, _) = await h.AddDeviceAsync();
        var notBefore = DateTimeOffset.UtcNow.AddSeconds(1.5);

        var push = await DispatchHarness.RequestAsync(node.Store, device, notBefore);
        var (claimedBy, _, _) = await h.QueueRowAsync(push);
        var outcomes = await DispatchHarness.WaitForFinalAsync(node.Store, device, push);

        Assert.Null(claimedBy);
        Assert.IsType<PushDelivered>(Assert.Single(outcomes));
        // Not sent before its time, however slow this machine: the mock noted when the request arrived.
        Assert.True(Assert.Single(h.Mock.Requests).ReceivedAt >= notBefore.AddMilliseconds(-1), "sent after NotBefore");
        Assert.True(Assert.Single(h.Mock.Requests).ReceivedAt >= notBefore);
    }

    [Fact]
    public async Task Dispatcher_Should_RecordDeviceGoneWithoutSending_When_DeviceIsInactive()
    {
        await using var h = await DispatchHarness.CreateAsync();
        var node = await h.Node().StartAsync();
        var (device, _) = await h.AddDeviceAsync(active: false);

        var push = await DispatchHarness.RequestAsync(node.Store, device);
        var outcomes = await DispatchHarness.WaitForFinalAsync(node.Store, device, push);

        var failed = Assert.IsType<PushFailed>(Assert.Single(outcomes));
        Assert.Equal(PushDispatcher.ReasonDeviceGone, failed.Reason);
        Assert.False(failed.Transient);
        Assert.Equal(0, h.Mock.RequestCount);
        Assert.Equal(0, await h.QueueCountAsync(push));
    }

    [Fact]
    public async Task Dispatcher_Should_RecordDeviceErasedWithoutSending_When_DataKeyIsShredded()
    {
        await using var h = await DispatchHarness.CreateAsync();
        var node = await h.Node().StartAsync();
        var (device, _) = await h.AddDeviceAsync();
        await h.Keys.DeleteAsync(device);

        var push = await DispatchHarness.RequestAsync(node.Store, device);
        var outcomes = await DispatchHarness.WaitForFinalAsync(node.Store, device, push);

        Assert.Equal(PushDispatcher.ReasonDeviceErased, Assert.IsType<PushFailed>(Assert.Single(outcomes)).Reason);
        Assert.Equal(0, h.Mock.RequestCount);
    }

    [Fact]
    public async Task Dispatcher_Should_SendOnWhileOutcomesWaitForTheirCommit_AndStopAtTwiceMaxInFlight()
    {
        await using var h = await DispatchHarness.CreateAsync();
        // Outcomes linger 5 s for others to share their commit (fewer than 64 never end it early), so every push Apple
        // has answered waits that long for its outcome to be recorded.
        var a = await h.Node(o => o.MaxInFlight = 2, deferredLinger: TimeSpan.FromSeconds(5)).StartAsync();
        var devices = new List<Guid>();
        var pushes = new List<Guid>();
        for (var i = 0; i < 6; i++)
        {
            var (device, _) = await h.AddDeviceAsync();
            devices.Add(device);
            pushes.Add(await DispatchHarness.RequestAsync(a.Store, device));
        }

        await WaitForRequestsAsync(h, 2, DispatchHarness.Patience);
        // The two answered pushes gave their slots to the next two while their outcomes wait: four sent within the linger.
        await WaitForRequestsAsync(h, 4, TimeSpan.FromSeconds(2));
        // Then the two waiting without a slot are the most allowed (MaxInFlight): the next two keep theirs, and the last
        // two are not sent until the outcomes are committed.
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(4, h.Mock.RequestCount);

        for (var i = 0; i < 6; i++)
        {
            Assert.IsType<PushDelivered>(Assert.Single(await DispatchHarness.WaitForFinalAsync(a.Store, devices[i], pushes[i])));
        }

        Assert.Equal(6, h.Mock.RequestCount);
        Assert.Equal(0, h.Mock.DuplicateDeliveries);
        Assert.Equal(0, await h.QueueCountAsync());
    }

    [Fact]
    public async Task StopAsync_Should_FinishInFlightSendsAndHandBackTheRest_When_Stopping()
    {
        await using var h = await DispatchHarness.CreateAsync();
        // A long lease: handed-back pushes must go at once, not after the lease.
        var a = await h.Node(o => { o.MaxInFlight = 2; o.LeaseDuration = TimeSpan.FromSeconds(60); }).StartAsync();
        var devices = new List<Guid>();
        var pushes = new List<Guid>();
        await WarmUpAsync(h, a);
        h.Mock.StallNext(2);
        for (var i = 0; i < 5; i++)
        {
            var (device, _) = await h.AddDeviceAsync();
            devices.Add(device);
            pushes.Add(await DispatchHarness.RequestAsync(a.Store, device));
        }

        await h.Mock.WaitForStalledAsync(2, DispatchHarness.Patience);
        var stopping = a.StopAsync();
        await a.WaitUntilStoppingAsync();
        Assert.False(stopping.IsCompleted, "the stop waits for the stalled sends");
        h.Mock.ReleaseStalled();
        await stopping;

        Assert.Equal(3, a.Dispatcher.Delivered);
        Assert.Equal(3, h.Mock.RequestCount);
        Assert.Equal(3, await h.QueueCountAsync());
        for (var i = 0; i < 5; i++)
        {
            var outcomes = await DispatchHarness.OutcomesAsync(a.Store, devices[i], pushes[i]);
            if (outcomes.Count == 0)
            {
                Assert.Null((await h.QueueRowAsync(pushes[i])).ClaimedBy);
            }
        }

        var b = await h.Node(o => o.LeaseDuration = TimeSpan.FromSeconds(60)).StartAsync();
        for (var i = 0; i < 5; i++)
        {
            var outcomes = await DispatchHarness.WaitForFinalAsync(b.Store, devices[i], pushes[i], TimeSpan.FromSeconds(20));
            Assert.IsType<PushDelivered>(Assert.Single(outcomes));
        }

        Assert.Equal(6, h.Mock.RequestCount);
        Assert.Empty(h.Probe.Overlaps);
    }

    [Fact]
    public async Task Dispatcher_Should_TakeOverAfterLeaseAndDeliverOnce_When_OtherNodeWasKilled()
    {
        await using var h = await DispatchHarness.CreateAsync();
        var a = await h.Node().StartAsync();
        var devices = new List<Guid>();
        var pushes = new List<Guid>();
        await WarmUpAsync(h, a);
        h.Mock.StallNext(3);
        for (var i = 0; i < 3; i++)
        {
            var (device, _) = await h.AddDeviceAsync();
            devices.Add(device);
            pushes.Add(await DispatchHarness.RequestAsync(a.Store, device));
        }

        await h.Mock.WaitForStalledAsync(3, DispatchHarness.Patience);
        await a.KillAsync();
        var leaseEnds = new List<DateTimeOffset>();
        foreach (var push in pushes)
        {
            var (claimedBy, claimedUntil, _) = await h.QueueRowAsync(push);
            Assert.Equal(a.Dispatcher.NodeId, claimedBy);
            leaseEnds.Add(claimedUntil!.Value);
        }

        var b = await h.Node().StartAsync();
        for (var i = 0; i < 3; i++)
        {
            await DispatchHarness.WaitForFinalAsync(b.Store, devices[i], pushes[i]);
        }

        var ids = pushes.Select(p => p.ToString("D")).ToHashSet();
        var retakes = h.Mock.Requests.Where(r => r.Status == 200 && ids.Contains(r.Header("apns-id")!)).ToList();
        Assert.Equal(3, retakes.Count);
        // Not before the killed node's lease had passed.
        Assert.All(retakes, r => Assert.True(r.ReceivedAt >= leaseEnds.Min()));
        for (var i = 0; i < 3; i++)
        {
            var outcomes = await DispatchHarness.OutcomesAsync(b.Store, devices[i], pushes[i]);
            Assert.IsType<PushDelivered>(Assert.Single(outcomes));
            Assert.Equal(2, h.Mock.Requests.Count(r => r.Header("apns-id") == pushes[i].ToString("D")));
        }

        Assert.Empty(h.Probe.Overlaps);
        Assert.Equal(0, await h.QueueCountAsync());
    }

    [Fact]
    public async Task Dispatchers_Should_DeliverEveryPushOnceNeverConcurrently_When_TwoNodesShareTheQueue()
    {
        const int Pushes = 500;
        await using var h = await DispatchHarness.CreateAsync();
        h.Mock.Latency = TimeSpan.FromMilliseconds(5);
        var a = await h.Node().StartAsync();
        var b = await h.Node().StartAsync();
        var devices = new List<Guid>();
        for (var i = 0; i < 50; i++)
        {
            devices.Add((await h.AddDeviceAsync()).DeviceId);
        }

        // Half through each node's fast path; a fifth delayed, so both pollers compete for them.
        var requests = Enumerable.Range(0, Pushes).Select(i =>
        {
            var store = i % 2 == 0 ? a.Store : b.Store;
            var notBefore = i % 5 == 0 ? DateTimeOffset.UtcNow.AddMilliseconds(500) : (DateTimeOffset?)null;
            return DispatchHarness.RequestAsync(store, devices[i % devices.Count], notBefore);
        });
        var pushes = await Task.WhenAll(requests);

        using var cts = new CancellationTokenSource(DispatchHarness.Patience);
        while (await h.CountEventsAsync("push_delivered.v1") < Pushes)
        {
            await Task.Delay(100, cts.Token);
        }

        await a.WaitForPollsAsync();
        await b.WaitForPollsAsync();
        Assert.Equal(Pushes, await h.CountEventsAsync("push_delivered.v1"));
        Assert.Equal(0, await h.QueueCountAsync());
        Assert.Empty(h.Probe.Overlaps);
        Assert.Equal(Pushes, h.Mock.RequestCount);
        Assert.Equal(pushes.Select(p => p.ToString("D")).Order(), h.Mock.Requests.Select(r => r.Header("apns-id")!).Order());
        Assert.Equal(Pushes, a.Dispatcher.Delivered + b.Dispatcher.Delivered);
        Assert.True(a.Dispatcher.Delivered > 0 && b.Dispatcher.Delivered > 0);
    }

    // Waits until the mock APNs has seen at least `count` requests; fails (cancelled) after `timeout`.
    private static async Task WaitForRequestsAsync(DispatchHarness h, int count, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (h.Mock.RequestCount < count)
        {
            await Task.Delay(20, cts.Token);
        }
    }

    // A fresh APNs connection takes one request at a time until one is answered (ApnsClient warm-up): answer one first.
    private static async Task WarmUpAsync(DispatchHarness h, DispatchNode node)
    {
        var (device, _) = await h.AddDeviceAsync();
        var push = await DispatchHarness.RequestAsync(node.Store, device);
        Assert.IsType<PushDelivered>(Assert.Single(await DispatchHarness.WaitForFinalAsync(node.Store, device, push)));
    }
}
