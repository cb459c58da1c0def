using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Crypto;
using Xunit.Abstractions;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// Issue 18 against the whole `serve` host (limits from its configuration, the real ledger, delivery to the mock
/// APNs): a noisy domain flooding random tokens at full speed stays within its quota while a quiet domain's
/// publishes are all answered `result` and delivered; an HTTP registration flood from one client network gets 429
/// while other clients are served.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class AbuseResistanceServeTests(ITestOutputHelper output)
{
    private const string Noisy = "noisy.example";
    private const string Quiet = "quiet.example";

    [Fact]
    public async Task Serve_Should_AnswerAndDeliverEveryQuietPublish_When_ANoisyDomainFloodsRandomTokens()
    {
        const int NoisyCount = 6_000;
        const int QuietCount = 80; // below the quota, which every domain has
        const int Quota = 100;
        await using var harness = await ServeHarness.CreateAsync(null, null,
            "--Limits:PublishesPerSecond=500", "--Limits:PublishBurst=500",
            $"--Limits:NewDevicesPerHour={Quota}", $"--Limits:NewDeviceBurst={Quota}");
        await harness.StartAsync();
        var quietTokens = Enumerable.Range(0, QuietCount).Select(_ => ServeHarness.NewToken()).ToArray();
        var sentAt = new Dictionary<string, long>();

        // One component link carries every domain's publishes, as an XMPP server's does: the noisy one writes as fast
        // as the socket takes them, a quiet publish every 50 of them.
        var quiet = 0;
        for (var i = 0; i < NoisyCount; i++)
        {
            await harness.Link!.WriteAsync(ServeHarness.Publish($"n{i}", ServeHarness.NewToken(), Noisy), CancellationToken.None);
            if (i % 50 == 0 && quiet < QuietCount)
            {
                sentAt[$"q{quiet}"] = Stopwatch.GetTimestamp();
                await harness.Link.WriteAsync(ServeHarness.Publish($"q{quiet}", quietTokens[quiet], Quiet), CancellationToken.None);
                quiet++;
            }
        }

        await ServeHarness.WaitAsync(() => Task.FromResult(harness.Replies.Count >= NoisyCount + quiet), seconds: 120);
        var during = Latencies(harness, sentAt);

        var quietReplies = sentAt.Keys.Select(id => harness.Replies[id]).ToList();
        Assert.All(quietReplies, r => Assert.True(r.IsResult, r.Outcome));
        var noisyReplies = harness.Replies.Values.Where(r => r.Id.StartsWith('n')).ToList();
        Assert.Equal(NoisyCount, noisyReplies.Count);
        Assert.All(noisyReplies.Where(r => !r.IsResult), r => Assert.Equal("wait/resource-constraint", r.Outcome));
        var noisyAccepted = noisyReplies.Count(r => r.IsResult);
        Assert.InRange(noisyAccepted, 1, Quota);
        Assert.InRange(await harness.CountAsync("select count(*) from devices where $1 = any(domains)", Noisy), 1, Quota);
        Assert.Equal(quiet, await harness.CountAsync("select count(*) from devices where $1 = any(domains)", Quiet));

        // Every quiet publish answered `result` reaches Apple (the mock).
        var hash = new KeyedHash(new MasterKey(Options.Create(new LedgerOptions()), Options.Create(new DataOptions { Path = harness.DataPath })));
        var quietDevices = quietTokens.Take(quiet).Select(t => hash.StatelessDeviceId("monalTest", t)).ToArray();
        await ServeHarness.WaitAsync(async () => await harness.CountAsync(
            "select count(*) from push_events where type = 'push_delivered.v1' and stream_id = any($1)", quietDevices) == quiet);

        // The same quiet devices with nobody flooding, for comparison in the output.
        var alone = new Dictionary<string, long>();
        for (var j = 0; j < quiet; j++)
        {
            alone[$"a{j}"] = Stopwatch.GetTimestamp();
            await harness.Link!.WriteAsync(ServeHarness.Publish($"a{j}", quietTokens[j], Quiet), CancellationToken.None);
            await ServeHarness.WaitAsync(() => Task.FromResult(harness.Replies.ContainsKey($"a{j}")), seconds: 30);
        }

        Assert.All(alone.Keys, id => Assert.True(harness.Replies[id].IsResult, harness.Replies[id].Outcome));
        var quietAlone = Latencies(harness, alone);
        output.WriteLine($"noisy: {NoisyCount} publishes to random tokens, {noisyAccepted} accepted (quota {Quota}), the rest wait/resource-constraint");
        output.WriteLine($"quiet during the flood: {quiet} publishes, p50 {Percentile(during, 0.50):F1} ms, p99 {Percentile(during, 0.99):F1} ms, max {during.Max():F1} ms");
        output.WriteLine($"quiet alone (one at a time): p50 {Percentile(quietAlone, 0.50):F1} ms, p99 {Percentile(quietAlone, 0.99):F1} ms");
    }

    [Fact]
    public async Task Register_Should_Answer429ToTheFloodingClientOnly_When_OneClientNetworkFloodsOverHttp()
    {
        await using var harness = await ServeHarness.CreateAsync(null, null,
            "--Registration:PushModule=monalTest", "--Limits:Http:RequestsPerMinute=1", "--Limits:Http:RequestBurst=5");
        await harness.StartAsync();
        using var http = new HttpClient { BaseAddress = harness.Host!.HttpAddress };

        // The test's loopback connection is a trusted proxy by default: X-Forwarded-For names the client.
        var flood = await RegisterManyAsync(http, "203.0.113.7", 15);
        Assert.Equal(5, flood.Count(r => r.Status == HttpStatusCode.OK));
        var refused = flood.Where(r => r.Status != HttpStatusCode.OK).ToList();
        Assert.Equal(10, refused.Count);
        Assert.All(refused, r =>
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, r.Status);
            Assert.Equal("ERROR\nToo many requests, try again later!\n", r.Body);
            Assert.NotNull(r.RetryAfter);
        });

        // Other clients are served meanwhile; an IPv6 client is limited by its /64, not by each address of it.
        Assert.All(await RegisterManyAsync(http, "198.51.100.9", 5), r => Assert.Equal(HttpStatusCode.OK, r.Status));
        Assert.All(await RegisterManyAsync(http, "2001:db8:1:2::1", 5), r => Assert.Equal(HttpStatusCode.OK, r.Status));
        Assert.All(await RegisterManyAsync(http, "2001:db8:1:2::99", 2), r => Assert.Equal(HttpStatusCode.TooManyRequests, r.Status));
        Assert.All(await RegisterManyAsync(http, null, 3), r => Assert.Equal(HttpStatusCode.OK, r.Status));
        Assert.Equal(5 + 5 + 5 + 3, await harness.CountAsync("select count(*) from devices where mode = 'registered'"));

        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Contains("monal_push_ingest_limits_total{limit=\"http-requests\",outcome=\"refused\"} 12", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain("203.0.113.7", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Register_Should_Answer429_When_AClientNetworkUsedItsNewDeviceQuota()
    {
        await using var harness = await ServeHarness.CreateAsync(null, null,
            "--Registration:PushModule=monalTest", "--Limits:Http:NewDevicesPerHour=3", "--Limits:Http:NewDeviceBurst=3");
        await harness.StartAsync();
        using var http = new HttpClient { BaseAddress = harness.Host!.HttpAddress };

        var nodes = Enumerable.Range(0, 5).Select(_ => Guid.NewGuid().ToString()).ToArray();
        var replies = new List<RegisterReply>();
        foreach (var node in nodes)
        {
            replies.Add(await RegisterAsync(http, "203.0.113.20", node));
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests],
            replies.Select(r => r.Status));
        Assert.Equal("ERROR\nToo many new registrations, try again later!\n", replies[3].Body);
        // Registering a known node again creates nothing and is served; another client has a quota of its own.
        Assert.Equal(HttpStatusCode.OK, (await RegisterAsync(http, "203.0.113.20", nodes[0])).Status);
        Assert.Equal(HttpStatusCode.OK, (await RegisterAsync(http, "198.51.100.20", Guid.NewGuid().ToString())).Status);
        Assert.Equal(4, await harness.CountAsync("select count(*) from devices"));
        // The client's address is kept only as a keyed hash of its network.
        Assert.Equal(0, await harness.CountAsync("select count(*) from new_device_quota where subject like '%203.0.113%'"));
        Assert.Equal(2, await harness.CountAsync("select count(*) from new_device_quota where subject like 'http:h:%'"));

        var ready = await http.GetStringAsync(new Uri("/health/ready", UriKind.Relative));
        Assert.Contains("\"limits\"", ready, StringComparison.Ordinal);
        Assert.Contains("3 new devices/h (burst 3)", ready, StringComparison.Ordinal);
    }

    private sealed record RegisterReply(HttpStatusCode Status, string Body, string? RetryAfter);

    private static async Task<List<RegisterReply>> RegisterManyAsync(HttpClient http, string? client, int count)
    {
        var replies = new List<RegisterReply>();
        for (var i = 0; i < count; i++)
        {
            replies.Add(await RegisterAsync(http, client, Guid.NewGuid().ToString()));
        }

        return replies;
    }

    private static async Task<RegisterReply> RegisterAsync(HttpClient http, string? client, string node)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/v1/register", UriKind.Relative))
        {
            Content = new FormUrlEncodedContent([new("type", "apns"), new("node", node), new("token", ServeHarness.NewToken())]),
        };
        if (client is not null)
        {
            request.Headers.Add("X-Forwarded-For", client);
        }

        using var response = await http.SendAsync(request);
        return new RegisterReply(response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers.RetryAfter?.ToString());
    }

    private static List<double> Latencies(ServeHarness harness, Dictionary<string, long> sentAt) =>
        [.. sentAt.Select(s => Stopwatch.GetElapsedTime(s.Value, harness.ReplyTimes[s.Key]).TotalMilliseconds).Order()];

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}
