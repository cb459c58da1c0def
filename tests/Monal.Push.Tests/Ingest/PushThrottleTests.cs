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
        clock.Advance(PushThrottle.KeepFor);
        throttle.Sweep(clock.GetUtcNow());
        Assert.Equal(0, throttle.Count);
    }

    [Fact]
    public async Task RunAsync_Should_KeepDevices_When_OnlyTheirWindowHasPassed()
    {
        var clock = new ManualClock();
        var throttle = Throttle(clock);
        var devices = Enumerable.Range(0, 100).Select(_ => Guid.NewGuid()).ToList();
        foreach (var device in devices)
        {
            await throttle.RunAsync(device, _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);
        }

        clock.Advance(TimeSpan.FromMinutes(1));
        var again = await throttle.RunAsync(devices[0], _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);

        Assert.Equal(ThrottleDecision.Immediate, again.Decision);
        Assert.Equal(100, throttle.Count);
    }

    [Fact]
    public async Task RunAsync_Should_ForgetIdleDevices_When_KeepForHasPassed()
    {
        var clock = new ManualClock();
        var throttle = Throttle(clock);
        for (var i = 0; i < 100; i++)
        {
            await throttle.RunAsync(Guid.NewGuid(), _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);
        }

        clock.Advance(PushThrottle.KeepFor);
        await throttle.RunAsync(Guid.NewGuid(), _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);

        Assert.Equal(1, throttle.Count);
    }

    [Fact]
    public async Task Sweep_Should_ForgetDevicesPastTheirWindowFirst_When_Full()
    {
        var clock = new ManualClock();
        var throttle = Throttle(clock, maxDevices: 100);
        var old = Enumerable.Range(0, 50).Select(_ => Guid.NewGuid()).ToList();
        foreach (var device in old)
        {
            await throttle.RunAsync(device, _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);
        }

        clock.Advance(Window);
        var recent = Enumerable.Range(0, 50).Select(_ => Guid.NewGuid()).ToList();
        foreach (var device in recent)
        {
            await throttle.RunAsync(device, _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);
        }

        throttle.Sweep(clock.GetUtcNow());

        // Down to 90 % of the bound, and only devices whose window had passed were forgotten: every recent one is
        // still throttled.
        Assert.Equal(90, throttle.Count);
        foreach (var device in recent)
        {
            var outcome = await throttle.RunAsync(device, _ => Task.FromResult(PublishOutcome.Accepted), CancellationToken.None);
            Assert.Equal(ThrottleDecision.Delayed, outcome.Decision);
        }
    }

    [Fact]
    public async Task RunAsync_Should_AnswerRidersWithTheSettledOutcome_When_TheDelayedPushWasAppended()
    {
        var clock = new ManualClock();
        var throttle = Throttle(clock);
        var device = Guid.NewGuid();
        var appends = 0;
        Task<PublishOutcome> Push(DateTimeOffset? _)
        {
            appends++;
            return Task.FromResult(PublishOutcome.Accepted);
        }

        await throttle.RunAsync(device, Push, CancellationToken.None);
        var delayed = await throttle.RunAsync(device, Push, CancellationToken.None);
        var rider = await throttle.RunAsync(device, Push, CancellationToken.None);

        Assert.Equal(ThrottleDecision.Delayed, delayed.Decision);
        Assert.Equal(ThrottleDecision.Coalesced, rider.Decision);
        Assert.True(rider.Outcome.IsAccepted);
        Assert.Equal(2, appends);
    }
}
