using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest;
using Monal.Push.Ingest.Limiting;
using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

/// <summary>
/// Issue 18: one sender must not exhaust the service. The new-device quota against the real handlers and database
/// (shared by processes, kept across restarts), and the per-domain publish limits on a clock the test moves.
/// Every test names domains of its own: the run's tests share one database and so one quota per domain.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class AbuseResistanceTests
{
    private static LimitsOptions Quota(int burst, double perHour)
    {
        var limits = IngestHarness.Unlimited();
        limits.NewDeviceBurst = burst;
        limits.NewDevicesPerHour = perHour;
        return limits;
    }

    private static string NewDomain(string name) => $"{name}-{Guid.NewGuid():N}.example";

    private static PublishRequest From(string domain, string token) => IngestHarness.Stateless(token) with { FromDomain = domain };

    private static async Task<long> DevicesOfAsync(IngestHarness ingest, string domain)
    {
        await using var cmd = ingest.DataSource.CreateCommand("select count(*) from devices where $1 = any(domains)");
        cmd.Parameters.Add(new() { Value = domain });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private static void AssertTryLater(PublishOutcome outcome)
    {
        Assert.Equal(StanzaErrorType.Wait, outcome.ErrorType);
        Assert.Equal("resource-constraint", outcome.Condition);
    }

    [Fact]
    public async Task Publish_Should_KeepTheDevicesOfANoisyDomainWithinItsQuota_When_ItPublishesToRandomTokens()
    {
        var clock = new ManualClock();
        await using var ingest = await IngestHarness.CreateAsync(clock: clock, limits: Quota(burst: 40, perHour: 40));
        var noisy = NewDomain("noisy");
        var quiet = NewDomain("quiet");
        var noisyOutcomes = new List<(string Token, PublishOutcome Outcome)>();
        var quietOutcomes = new List<PublishOutcome>();

        for (var i = 0; i < 400; i++)
        {
            var token = IngestHarness.NewToken();
            noisyOutcomes.Add((token, await ingest.Publish.HandleAsync(From(noisy, token), CancellationToken.None)));
            if (i % 20 == 0)
            {
                quietOutcomes.Add(await ingest.Publish.HandleAsync(From(quiet, IngestHarness.NewToken()), CancellationToken.None));
            }
        }

        Assert.Equal(40, noisyOutcomes.Count(o => o.Outcome.IsAccepted));
        Assert.All(noisyOutcomes.Where(o => !o.Outcome.IsAccepted), o => AssertTryLater(o.Outcome));
        Assert.Equal(40, await DevicesOfAsync(ingest, noisy));
        Assert.All(quietOutcomes, o => Assert.True(o.IsAccepted, o.Condition));
        Assert.Equal(quietOutcomes.Count, await DevicesOfAsync(ingest, quiet));

        // A device the noisy domain did create is still served: the quota is about new devices only.
        clock.Advance(TimeSpan.FromSeconds(10));
        var known = noisyOutcomes.First(o => o.Outcome.IsAccepted).Token;
        Assert.True((await ingest.Publish.HandleAsync(From(noisy, known), CancellationToken.None)).IsAccepted);

        // Half an hour refills half the bucket (40 per hour), and no more.
        clock.Advance(TimeSpan.FromMinutes(30));
        var later = new List<PublishOutcome>();
        for (var i = 0; i < 100; i++)
        {
            later.Add(await ingest.Publish.HandleAsync(From(noisy, IngestHarness.NewToken()), CancellationToken.None));
        }

        Assert.Equal(20, later.Count(o => o.IsAccepted));
        Assert.Equal(60, await DevicesOfAsync(ingest, noisy));
    }

    [Fact]
    public async Task Quota_Should_HoldAcrossProcessesAndRestarts_When_TheyShareOneDatabase()
    {
        var clock = new ManualClock();
        var limits = Quota(burst: 30, perHour: 30);
        var noisy = NewDomain("noisy");
        var accepted = 0;
        // A database of its own: the test counts a bucket to the token, so nothing another test does to the run's shared
        // database (its locks, its failures) may cost one of this test's publishes.
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using (var first = await IngestHarness.CreateAsync(clock: clock, limits: limits, dataSource: dataSource))
        await using (var second = await IngestHarness.CreateAsync(clock: clock, limits: limits, dataSource: dataSource))
        {
            // Two processes on one database, concurrently: together they create no more than one bucket.
            var outcomes = await Task.WhenAll(Enumerable.Range(0, 120).Select(i =>
                (i % 2 == 0 ? first : second).Publish.HandleAsync(From(noisy, IngestHarness.NewToken()), CancellationToken.None).AsTask()));
            Assert.All(outcomes.Where(o => !o.IsAccepted), AssertTryLater);
            accepted += outcomes.Count(o => o.IsAccepted);
            Assert.Equal(30, accepted);
        }

        // A restart (a new process, nothing in memory) finds the bucket as the others left it: empty.
        await using var restarted = await IngestHarness.CreateAsync(clock: clock, limits: limits, dataSource: dataSource);
        for (var i = 0; i < 10; i++)
        {
            AssertTryLater(await restarted.Publish.HandleAsync(From(noisy, IngestHarness.NewToken()), CancellationToken.None));
        }

        clock.Advance(TimeSpan.FromHours(1));
        var later = new List<PublishOutcome>();
        for (var i = 0; i < 50; i++)
        {
            later.Add(await restarted.Publish.HandleAsync(From(noisy, IngestHarness.NewToken()), CancellationToken.None));
        }

        // Every refusal is the quota's "try later", not a failure that happened to spend a token.
        Assert.All(later.Where(o => !o.IsAccepted), AssertTryLater);
        var refilled = later.Count(o => o.IsAccepted);
        Assert.Equal(30, refilled);
        Assert.Equal(60, await DevicesOfAsync(restarted, noisy));

        // A full bucket's row is deleted by the sweep: nothing is kept about a domain that stopped creating devices.
        clock.Advance(TimeSpan.FromHours(2));
        await restarted.Quota.SweepAsync(CancellationToken.None);
        Assert.Equal(0, await restarted.RowsContainingAsync("new_device_quota", noisy));
    }

    [Fact]
    public async Task AdHocRegistration_Should_AnswerTryLater_When_TheDomainUsedItsNewDeviceQuota()
    {
        await using var ingest = await IngestHarness.CreateAsync(limits: Quota(burst: 2, perHour: 2));
        var domain = NewDomain("registrar");
        var nodes = Enumerable.Range(0, 3).Select(_ => Guid.NewGuid().ToString()).ToArray();

        var replies = new List<Monal.Push.Ingest.Registering.RegistrationResult>();
        foreach (var node in nodes)
        {
            replies.Add(await ingest.Registration.RegisterAsync("apns", node, IngestHarness.NewToken(), domain, CancellationToken.None));
        }

        Assert.True(replies[0].Succeeded);
        Assert.True(replies[1].Succeeded);
        Assert.True(replies[2].TryLater);
        Assert.Empty(await ingest.EventsAsync(Guid.Parse(nodes[2])));
        // Registering a node again is no new device: it is answered as before.
        Assert.True((await ingest.Registration.RegisterAsync("apns", nodes[0], IngestHarness.NewToken(), domain, CancellationToken.None)).Succeeded);
    }

    [Fact]
    public async Task DomainLimiter_Should_RefuseOnlyTheNoisyDomain_When_ItExceedsItsRateOrPendingCap()
    {
        var clock = new ManualClock();
        using var metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var logger = new ListLogger<DomainLimiter>();
        var limiter = new DomainLimiter(
            Options.Create(new LimitsOptions { PublishesPerSecond = 10, PublishBurst = 20, MaxPendingPerDomain = 5 }),
            clock, new IngestMetrics(metrics.GetRequiredService<IMeterFactory>()), logger);

        var admitted = 0;
        for (var i = 0; i < 100; i++)
        {
            if (limiter.TryEnter("noisy.example", out var slot) is null)
            {
                admitted++;
                limiter.Exit(slot);
            }
        }

        Assert.Equal(20, admitted);
        Assert.Equal(LimitKind.PublishRate, limiter.TryEnter("noisy.example", out _));
        Assert.Null(limiter.TryEnter("quiet.example", out var quietSlot));
        limiter.Exit(quietSlot);
        Assert.Equal(1, limiter.Limited);

        clock.Advance(TimeSpan.FromSeconds(1));
        admitted = 0;
        for (var i = 0; i < 100; i++)
        {
            if (limiter.TryEnter("noisy.example", out var slot) is null)
            {
                admitted++;
                limiter.Exit(slot);
            }
        }

        Assert.Equal(10, admitted);

        // Five publishes of one domain still being handled hold all it may hold; an answered one frees its place.
        var held = Enumerable.Range(0, 5).Select(_ => limiter.TryEnter("slow.example", out var s) is null ? s : (DomainLimiter.Admission?)null).ToList();
        Assert.All(held, h => Assert.True(h.HasValue));
        Assert.Equal(LimitKind.DomainPending, limiter.TryEnter("slow.example", out _));
        limiter.Exit(held[0]!.Value);
        Assert.Null(limiter.TryEnter("slow.example", out _));

        // The log line is rate-limited itself: one per domain per minute, whatever the number of refusals.
        Assert.Single(logger.Lines, l => l.Contains("noisy.example", StringComparison.Ordinal));
        clock.Advance(TimeSpan.FromMinutes(1));
        for (var i = 0; i < 50; i++)
        {
            limiter.TryEnter("noisy.example", out _);
        }

        Assert.Equal(2, logger.Lines.Count(l => l.Contains("noisy.example", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData(0, 10)]
    [InlineData(10, 0)]
    [InlineData(1, 1_000)]
    public void LimitsOptions_Should_NameTheKey_When_ABucketIsUnusableOrOutlivesThePolicy(double perHour, int burst)
    {
        var problems = new LimitsOptions { NewDevicesPerHour = perHour, NewDeviceBurst = burst }.Problems();

        var problem = Assert.Single(problems);
        Assert.Contains("Limits:NewDevice", problem, StringComparison.Ordinal);
        Assert.Empty(new LimitsOptions().Problems());
    }

    /// <summary>Keeps each formatted log line.</summary>
    private sealed class ListLogger<T> : ILogger<T>
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines)
            {
                Lines.Add(formatter(state, exception));
            }
        }
    }
}
