using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;

namespace Monal.Push.Tests.Delivery.Dispatching;

[Trait("Category", "Postgres")]
public sealed class DeliveryQueueProjectionTests
{
    [Fact]
    public async Task Project_Should_QueueUnclaimedRow_When_NoDispatcherRuns()
    {
        await using var h = await DispatchHarness.CreateAsync();
        var node = h.Node();
        var device = Guid.CreateVersion7();

        var push = await DispatchHarness.RequestAsync(node.Store, device);

        var (claimedBy, claimedUntil, attempts) = await h.QueueRowAsync(push);
        Assert.Null(claimedBy);
        Assert.Null(claimedUntil);
        Assert.Equal(0, attempts);
    }

    [Fact]
    public async Task Project_Should_RescheduleAndHandBack_When_PushFailsTransiently()
    {
        await using var h = await DispatchHarness.CreateAsync();
        var node = h.Node();
        var device = Guid.CreateVersion7();
        var push = await DispatchHarness.RequestAsync(node.Store, device);

        await node.Store.AppendAsync(device, "device", ExpectedVersion.Any, [new PushFailed(push, device, 503, "ServiceUnavailable", true, DateTimeOffset.UtcNow)]);

        var (claimedBy, _, attempts) = await h.QueueRowAsync(push);
        Assert.Null(claimedBy);
        Assert.Equal(1, attempts);
    }

    [Fact]
    public async Task Project_Should_RefuseSecondFinalOutcome_When_PushIsNoLongerQueued()
    {
        await using var h = await DispatchHarness.CreateAsync();
        var node = h.Node();
        var device = Guid.CreateVersion7();
        var push = await DispatchHarness.RequestAsync(node.Store, device);
        var delivered = new PushDelivered(push, device, push, DateTimeOffset.UtcNow, 1);

        await node.Store.AppendAsync(device, "device", ExpectedVersion.Any, [delivered]);
        var refused = await Assert.ThrowsAsync<AppendRejectedException>(() =>
            node.Store.AppendAsync(device, "device", ExpectedVersion.Any, [delivered with { LatencyMs = 2 }]));

        Assert.Equal("push_not_queued", refused.Reason);
        Assert.Equal(0, await h.QueueCountAsync(push));
        Assert.Equal(1, await h.CountEventsAsync("push_delivered.v1"));
    }

    [Fact]
    public async Task OnDelete_Should_RemoveTheDevicesRows_When_StreamIsDeleted()
    {
        await using var h = await DispatchHarness.CreateAsync();
        var node = h.Node();
        var device = Guid.CreateVersion7();
        var other = Guid.CreateVersion7();
        await DispatchHarness.RequestAsync(node.Store, device);
        await DispatchHarness.RequestAsync(node.Store, device);
        var kept = await DispatchHarness.RequestAsync(node.Store, other);

        await node.Store.DeleteStreamAsync(device);

        Assert.Equal(1, await h.QueueCountAsync());
        Assert.Equal(1, await h.QueueCountAsync(kept));
    }
}
