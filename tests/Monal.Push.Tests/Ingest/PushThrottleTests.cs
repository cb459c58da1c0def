using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Ingest.Throttling;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

public sealed class PushThrottleTests
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(5);

    private static PushThrottle Throttle(ManualClock clock, int maxDevices = 200_000) =>
        new(Options.Create(new ThrottleOptions { Window = Window, MaxDevices = maxDevices }), clock, NullLogger<PushThrottle>.Instance);

    [Fact]
    public async Task RunAsync_Should_PushNowThenDelayOnceThenCoalesce_When_PublishesArriveInsideTheWindow()
    {
        var clock = new ManualClock();
        var throttle = Throttle(clock);
        var device = Guid.NewGuid();
        var pushes = new List<DateTimeOffset?>();
        Task<PublishOutcome> Push(DateTimeOffset? notBefore)
        {
            pushes.Add(notBefore);
            return Task.FromResult(PublishOutcome.Accepted);
        }

        var start = clock.GetUtcNow();
        var first = await throttle.RunAsync(device, Push, CancellationToken.None);
        clock.Advance(TimeSpan.FromSeconds(1));
        var second = await throttle.RunAsync(device, Push, CancellationToken.None);
        clock.Advance(TimeSpan.FromSeconds(1));
        var third = await throttle.RunAsync(device, Push, CancellationToken.None);

        Assert.Equal(ThrottleDecision.Immediate, first.Decision);
        Assert.Equal(ThrottleDecision.Delayed, second.Decision);
        Assert.Equal(ThrottleDecision.Coalesced, third.Decision);
        Assert.True(third.Outcome.IsAccepted);
        Assert.Equal([null, start + Window], pushes);
    }

    [Fact]
    public async Task RunAsync_Should_PushImmediately_When_TheWindowHasPassedWithoutADelayedPush()
    {
        var clock = new ManualClock();
        var throttle = Throttle(clock);
        var device = Guid.NewGuid();
        await throttle.RunAsync(device, _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);
        clock.Advance(Window);

        var next = await throttle.RunAsync(device, _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);

        Assert.Equal(ThrottleDecision.Immediate, next.Decision);
    }

    [Fact]
    public async Task RunAsync_Should_GiveRidersTheFailureAndRetryLater_When_TheDelayedAppendFails()
    {
        var clock = new ManualClock();
        var throttle = Throttle(clock);
        var device = Guid.NewGuid();
        await throttle.RunAsync(device, _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);
        var failing = new TaskCompletionSource<PublishOutcome>();
        var delayed = throttle.RunAsync(device, _ => failing.Task, CancellationToken.None);
        var rider = throttle.RunAsync(device, _ => throw new InvalidOperationException("a rider must not append"), CancellationToken.None);

        Assert.False(rider.IsCompleted);
        failing.SetResult(PublishOutcome.InternalServerError);

        Assert.Equal(PublishOutcome.InternalServerError, (await delayed).Outcome);
        var ridden = await rider;
        Assert.Equal(ThrottleDecision.Coalesced, ridden.Decision);
        Assert.Equal(PublishOutcome.InternalServerError, ridden.Outcome);
        var retried = await throttle.RunAsync(device, _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);
        Assert.Equal(ThrottleDecision.Delayed, retried.Decision);
        Assert.True(retried.Outcome.IsAccepted);
    }

    [Fact]
    public async Task RunAsync_Should_AppendAtMostTwoPushes_When_TenThousandConcurrentPublishesHitOneDevice()
    {
        var clock = new ManualClock();
        var throttle = Throttle(clock);
        var device = Guid.NewGuid();
        var appended = 0;
        async Task<PublishOutcome> Push(DateTimeOffset? notBefore)
        {
            Interlocked.Increment(ref appended);
            await Task.Delay(20);
            return PublishOutcome.Accepted;
        }

        var all = await Task.WhenAll(Enumerable.Range(0, 10_000).Select(_ => Task.Run(() => throttle.RunAsync(device, Push, CancellationToken.None))));

        Assert.All(all, o => Assert.True(o.Outcome.IsAccepted));
        Assert.Equal(2, appended);
        Assert.Equal(1, all.Count(o => o.Decision == ThrottleDecision.Immediate));
        Assert.Equal(1, all.Count(o => o.Decision == ThrottleDecision.Delayed));
        Assert.Equal(1, throttle.Count);
    }

    [Fact]
    public async Task RunAsync_Should_StayBounded_When_ManyDevicesPublishAtOnce()
    {
        var clock = new ManualClock();
        var throttle = Throttle(clock, maxDevices: 1000);

        for (var i = 0; i < 20_000; i++)
        {
            await throttle.RunAsync(Guid.NewGuid(), _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);
        }

        Assert.InRange(throttle.Count, 1, 1000);
        clock.Advance(Window);
        throttle.Sweep(clock.GetUtcNow());
        Assert.Equal(0, throttle.Count);
    }

    [Fact]
    public async Task RunAsync_Should_ForgetExpiredDevices_When_AMinuteHasPassed()
    {
        var clock = new ManualClock();
        var throttle = Throttle(clock);
        for (var i = 0; i < 100; i++)
        {
            await throttle.RunAsync(Guid.NewGuid(), _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);
        }

        clock.Advance(TimeSpan.FromMinutes(1));
        await throttle.RunAsync(Guid.NewGuid(), _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);

        Assert.Equal(1, throttle.Count);
    }
}
