using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest;
using Monal.Push.Ingest.Limiting;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

/// <summary>
/// Issue 15 point 4 and issue 16 point 3: under overload a publish is answered wait/resource-constraint at once
/// instead of queueing for seconds, a burst is not refused, and a quiet domain still gets in while another floods.
/// </summary>
public sealed class OverloadTests
{
    private static readonly TimeSpan Target = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    [Fact]
    public void StandingQueue_Should_NotStand_When_ABurstDrainsWithinAnInterval()
    {
        var clock = new SteppedClock();
        var queue = new StandingQueue(Target, Interval, clock);

        // 500 publishes admitted at once; the first answered after 10 ms, the rest spread over 300 ms.
        var admitted = queue.Now();
        for (var i = 0; i < 500; i++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(i == 0 ? 10 : 0.6));
            queue.Answered(admitted);
        }

        // The window that ended held the 10 ms answer: the queue drained, no standing queue.
        Assert.False(queue.IsStanding(pending: 100));
    }

    [Fact]
    public void StandingQueue_Should_Stand_When_EveryAnswerOfAnIntervalWaitedLongerThanTheTarget_AndRecover_When_OneIsQuick()
    {
        var clock = new SteppedClock();
        var queue = new StandingQueue(Target, Interval, clock);

        // For more than an interval every publish waits 200 ms.
        for (var i = 0; i < 120; i++)
        {
            var admitted = queue.Now();
            clock.Advance(TimeSpan.FromMilliseconds(200));
            queue.Answered(admitted);
            clock.Advance(-TimeSpan.FromMilliseconds(195));
        }

        Assert.True(queue.IsStanding(pending: 1_000));

        // Load drops: answers are quick again; the next window that ends clears it.
        for (var i = 0; i < 100; i++)
        {
            var admitted = queue.Now();
            clock.Advance(TimeSpan.FromMilliseconds(5));
            queue.Answered(admitted);
        }

        Assert.False(queue.IsStanding(pending: 10));
    }

    [Fact]
    public void StandingQueue_Should_Stand_When_NothingIsAnsweredForAnIntervalWhilePublishesPend()
    {
        var clock = new SteppedClock();
        var queue = new StandingQueue(Target, Interval, clock);
        Assert.False(queue.IsStanding(pending: 500));

        clock.Advance(Interval * 3);

        Assert.True(queue.IsStanding(pending: 500));
        Assert.False(queue.IsStanding(pending: 0));
    }

    [Fact]
    public void StandingQueue_Should_NeverStand_When_TheTargetIsZero()
    {
        var clock = new SteppedClock();
        var queue = new StandingQueue(TimeSpan.Zero, Interval, clock);
        var admitted = queue.Now();
        clock.Advance(TimeSpan.FromSeconds(10));
        queue.Answered(admitted);
        clock.Advance(TimeSpan.FromSeconds(10));

        Assert.False(queue.IsStanding(pending: 10_000));
    }

    [Fact]
    public void DomainLimiter_Should_RefuseTheFloodingDomainForOverload_ButAdmitAQuietOne_When_PublishesQueue()
    {
        var clock = new SteppedClock();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var limiter = new DomainLimiter(
            Options.Create(new LimitsOptions
            {
                PublishesPerSecond = 1_000_000, PublishBurst = 1_000_000, MaxPendingPerDomain = 100_000,
                QueueDelayTarget = Target, QueueDelayInterval = Interval,
            }),
            clock, new IngestMetrics(services.GetRequiredService<IMeterFactory>()), Microsoft.Extensions.Logging.Abstractions.NullLogger<DomainLimiter>.Instance);

        // The flooding domain has 1,000 publishes in the pipeline.
        var held = new List<DomainLimiter.Admission>();
        for (var i = 0; i < 1_000; i++)
        {
            Assert.Null(limiter.TryEnter("noisy.example", out var admission));
            held.Add(admission);
        }

        // A burst is no overload: they are still admitted.
        Assert.Null(limiter.TryEnter("noisy.example", out var more));
        held.Add(more);

        // Each answered publish waited 300 ms, for longer than an interval: the queue stands.
        clock.Advance(TimeSpan.FromMilliseconds(300));
        for (var i = 0; i < 400; i++)
        {
            limiter.Exit(held[i]);
            clock.Advance(TimeSpan.FromMilliseconds(1));
        }

        Assert.Equal(LimitKind.Overload, limiter.TryEnter("noisy.example", out _));
        Assert.Null(limiter.TryEnter("quiet.example", out var quiet));
        Assert.Equal(602, limiter.Pending);

        // Once the queue is gone, the flooding domain is admitted again.
        limiter.Exit(quiet);
        foreach (var admission in held.Skip(400))
        {
            limiter.Exit(admission);
        }

        for (var i = 0; i < 300; i++)
        {
            Assert.Null(limiter.TryEnter("noisy.example", out var quick));
            clock.Advance(TimeSpan.FromMilliseconds(2));
            limiter.Exit(quick);
        }

        Assert.Null(limiter.TryEnter("noisy.example", out _));
    }

    /// <summary>A clock whose monotonic timestamp moves only when told to (the wall clock too).</summary>
    private sealed class SteppedClock : TimeProvider
    {
        private long _ticks = 1_000_000_000;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(GetTimestamp());

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }
}
