using Monal.Push.Tests.Fixtures;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Delivery.Apns;
using Monal.Push.MockApns;

namespace Monal.Push.Tests.Delivery;

public sealed class ApnsClientTests : IDisposable
{
    private const string Topic = "im.monal.test";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private readonly ProviderKeyFile _key = new();
    private readonly ManualClock _time = new();
    private readonly ApnsJwtProvider _jwt;
    // No test may hang the run: everything gives up after a minute.
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));

    public ApnsClientTests() =>
        _jwt = ApnsJwtProvider.FromKeyFile(_key.TeamId, _key.KeyId, _key.Path, _time, NullLogger.Instance);

    private CancellationToken _ct => _timeout.Token;

    public void Dispose()
    {
        _timeout.Dispose();
        _jwt.Dispose();
        _key.Dispose();
    }

    private Task<MockApnsServer> StartMockAsync(bool tls = true, int maxStreams = 100, TimeSpan latency = default) =>
        MockApnsServer.StartAsync(new MockApnsOptions
        {
            UseTls = tls,
            Topic = Topic,
            ProviderPublicKeyPem = _key.PublicKeyPem,
            KeyId = _key.KeyId,
            TeamId = _key.TeamId,
            TimeProvider = _time,
            MaxStreamsPerConnection = maxStreams,
            Latency = latency,
        }, _ct);

    private ApnsClient CreateClient(MockApnsServer mock, int maxConcurrent = 100, TimeSpan? timeout = null) =>
        new(new ApnsClientOptions
        {
            Endpoint = mock.Endpoint,
            JwtProvider = _jwt,
            MaxConcurrentRequests = maxConcurrent,
            RequestTimeout = timeout ?? Patience,
            ServerCertificateValidation = mock.ServerCertificateValidation,
        }, _time, NullLogger.Instance);

    internal static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    private static ApnsRequest Request(string? token = null, TimeSpan? ttl = null, ApnsPayload? payload = null, string? collapseId = null)
    {
        payload ??= ApnsPayload.MonalAlert;
        return new ApnsRequest(token ?? NewToken(), Topic, payload.PushType, payload.Priority, payload.Utf8Json, Guid.NewGuid(), ttl, collapseId);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SendAsync_Should_PostToDevicePathWithHeadersAndJwt_When_SentOverTlsOrH2c(bool tls)
    {
        await using var mock = await StartMockAsync(tls);
        using var client = CreateClient(mock);
        var request = Request(ttl: TimeSpan.FromDays(1), collapseId: "monal");

        var response = await client.SendAsync(request, _ct);

        Assert.Equal(ApnsOutcome.Delivered, response.Outcome);
        Assert.Equal(200, response.Status);
        Assert.Equal(request.ApnsId, response.ApnsId);
        var received = Assert.Single(mock.Requests);
        Assert.Equal("POST", received.Method);
        Assert.Equal("HTTP/2", received.Protocol);
        Assert.Equal(tls, received.IsHttps);
        Assert.Equal("/3/device/" + request.DeviceToken, received.Path);
        Assert.Equal(Topic, received.Header("apns-topic"));
        Assert.Equal("alert", received.Header("apns-push-type"));
        Assert.Equal("10", received.Header("apns-priority"));
        Assert.Equal(request.ApnsId.ToString("D"), received.Header("apns-id"));
        Assert.Equal("monal", received.Header("apns-collapse-id"));
        Assert.Equal((_time.GetUtcNow() + TimeSpan.FromDays(1)).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture), received.Header("apns-expiration"));
        Assert.Equal(request.Payload.ToArray(), received.Payload);
        Assert.NotNull(received.ProviderToken);
        Assert.True(received.ProviderToken.SignatureValid);
        Assert.Equal(_key.KeyId, received.ProviderToken.KeyId);
        Assert.Equal(_key.TeamId, received.ProviderToken.Issuer);
        Assert.Equal(_time.GetUtcNow().ToUnixTimeSeconds(), received.ProviderToken.IssuedAt);
    }

    [Fact]
    public async Task SendAsync_Should_SendExpirationZeroOrNone_When_TtlIsZeroOrNull()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);

        await client.SendAsync(Request(ttl: TimeSpan.Zero), _ct);
        await client.SendAsync(Request(ttl: null), _ct);

        var requests = mock.Requests;
        Assert.Equal("0", requests[0].Header("apns-expiration"));
        Assert.Null(requests[1].Header("apns-expiration"));
    }

    [Fact]
    public async Task SendAsync_Should_SendAbsoluteExpiration_When_ClockMoves()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);

        _time.Advance(TimeSpan.FromMinutes(10));
        await client.SendAsync(Request(ttl: TimeSpan.FromHours(1)), _ct);

        var expected = _time.GetUtcNow().AddHours(1).ToUnixTimeSeconds();
        Assert.Equal(expected, long.Parse(Assert.Single(mock.Requests).Header("apns-expiration")!, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task SendAsync_Should_ReturnTokenInvalidatedWithTimestamp_When_AppleAnswers410()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);
        var token = NewToken();
        var since = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123);
        mock.RespondToToken(token, 410, "Unregistered", since);

        var response = await client.SendAsync(Request(token), _ct);
        var other = await client.SendAsync(Request(), _ct);

        Assert.Equal(ApnsOutcome.TokenInvalidated, response.Outcome);
        Assert.Equal(410, response.Status);
        Assert.Equal("Unregistered", response.Reason);
        Assert.Equal(since, response.Timestamp);
        Assert.Equal(ApnsOutcome.Delivered, other.Outcome);
    }

    [Theory]
    [InlineData(429, "TooManyRequests", nameof(ApnsOutcome.Transient))]
    [InlineData(500, "InternalServerError", nameof(ApnsOutcome.Transient))]
    [InlineData(503, "ServiceUnavailable", nameof(ApnsOutcome.Transient))]
    [InlineData(400, "BadDeviceToken", nameof(ApnsOutcome.TokenRejected))]
    [InlineData(403, "InvalidProviderToken", nameof(ApnsOutcome.Permanent))]
    public async Task SendAsync_Should_ClassifyScriptedAnswer_When_MockIsToldSo(int status, string reason, string expectedOutcome)
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);
        await client.SendAsync(Request(), _ct);
        mock.RespondToNext(1, status, reason);

        var response = await client.SendAsync(Request(), _ct);
        var after = await client.SendAsync(Request(), _ct);

        var expected = Enum.Parse<ApnsOutcome>(expectedOutcome);
        Assert.Equal((status, reason, expected), (response.Status, response.Reason, response.Outcome));
        Assert.Equal(ApnsOutcome.Delivered, after.Outcome);
    }

    [Fact]
    public async Task SendAsync_Should_GetMockRejections_When_HeadersAreWrong()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);

        var wrongTopic = await client.SendAsync(Request() with { Topic = "im.other.app" }, _ct);
        var shortToken = await client.SendAsync(Request("abcd"), _ct);

        Assert.Equal((400, "DeviceTokenNotForTopic", ApnsOutcome.TokenRejected), (wrongTopic.Status, wrongTopic.Reason, wrongTopic.Outcome));
        Assert.Equal((400, "BadDeviceToken", ApnsOutcome.TokenRejected), (shortToken.Status, shortToken.Reason, shortToken.Outcome));
    }

    [Fact]
    public async Task SendAsync_Should_GetInvalidProviderToken_When_SignedWithAnotherKey()
    {
        await using var mock = await StartMockAsync();
        using var otherKey = new ProviderKeyFile(_key.TeamId, _key.KeyId);
        using var otherJwt = ApnsJwtProvider.FromKeyFile(_key.TeamId, _key.KeyId, otherKey.Path, _time, NullLogger.Instance);
        using var client = new ApnsClient(
            new ApnsClientOptions { Endpoint = mock.Endpoint, JwtProvider = otherJwt, ServerCertificateValidation = mock.ServerCertificateValidation },
            _time, NullLogger.Instance);

        var response = await client.SendAsync(Request(), _ct);

        Assert.Equal((403, "InvalidProviderToken", ApnsOutcome.Permanent), (response.Status, response.Reason, response.Outcome));
        Assert.False(client.IsWarm);
    }

    [Fact]
    public async Task SendAsync_Should_RefreshJwtOnlyAfter20Minutes_When_AppleSaysExpiredProviderToken()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);
        await client.SendAsync(Request(), _ct);

        _time.Advance(TimeSpan.FromMinutes(10));
        mock.RespondToNext(1, 403, "ExpiredProviderToken");
        var early = await client.SendAsync(Request(), _ct);
        await client.SendAsync(Request(), _ct);
        var changesAfterEarly = mock.ProviderTokenChanges;

        _time.Advance(TimeSpan.FromMinutes(11));
        mock.RespondToNext(1, 403, "ExpiredProviderToken");
        var late = await client.SendAsync(Request(), _ct);
        var retried = await client.SendAsync(Request(), _ct);

        Assert.Equal(ApnsOutcome.Transient, early.Outcome);
        Assert.Equal(0, changesAfterEarly);
        Assert.Equal(ApnsOutcome.Transient, late.Outcome);
        Assert.Equal(ApnsOutcome.Delivered, retried.Outcome);
        Assert.Equal(1, mock.ProviderTokenChanges);
        Assert.Equal(_time.GetUtcNow().ToUnixTimeSeconds(), mock.Requests[^1].ProviderToken!.IssuedAt);
    }

    [Fact]
    public async Task SendAsync_Should_ReturnTransient_When_ConnectionIsDropped()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);
        await client.SendAsync(Request(), _ct);
        mock.DropConnectionNext();

        var dropped = await client.SendAsync(Request(), _ct);
        var next = await client.SendAsync(Request(), _ct);

        Assert.Equal(0, dropped.Status);
        Assert.Equal(ApnsOutcome.Transient, dropped.Outcome);
        Assert.NotNull(dropped.Reason);
        Assert.Equal(ApnsOutcome.Delivered, next.Outcome);
        Assert.Equal(2, mock.ConnectionCount);
    }

    [Fact]
    public async Task SendAsync_Should_ReturnTransient_When_StreamIsReset()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);
        await client.SendAsync(Request(), _ct);
        mock.ResetNext();

        var reset = await client.SendAsync(Request(), _ct);

        Assert.Equal((0, ApnsOutcome.Transient), (reset.Status, reset.Outcome));
    }

    [Fact]
    public async Task SendAsync_Should_ReturnTransientTimeout_When_AnswerStalls()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock, timeout: TimeSpan.FromMilliseconds(300));
        await client.SendAsync(Request(), _ct);
        mock.StallNext();

        var stalled = await client.SendAsync(Request(), _ct);

        Assert.Equal((0, ApnsReasons.Timeout, ApnsOutcome.Transient), (stalled.Status, stalled.Reason, stalled.Outcome));
    }

    [Fact]
    public async Task SendAsync_Should_Throw_When_CallerCancels()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);
        await client.SendAsync(Request(), _ct);
        mock.StallNext();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_ct);
        cts.CancelAfter(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.SendAsync(Request(), cts.Token));
    }

    [Fact]
    public async Task SendAsync_Should_ReturnTransient_When_NobodyListens()
    {
        Uri endpoint;
        await using (var mock = await StartMockAsync(tls: false))
        {
            endpoint = mock.Endpoint;
        }

        using var client = new ApnsClient(new ApnsClientOptions { Endpoint = endpoint, JwtProvider = _jwt }, _time, NullLogger.Instance);

        var response = await client.SendAsync(Request(), _ct);

        Assert.Equal((0, ApnsReasons.ConnectionFailed, ApnsOutcome.Transient), (response.Status, response.Reason, response.Outcome));
    }

    [Fact]
    public async Task SendAsync_Should_KeepAtMostTheCapInFlight_When_ABurstArrives()
    {
        await using var mock = await StartMockAsync(latency: TimeSpan.FromMilliseconds(50));
        using var client = CreateClient(mock, maxConcurrent: 4);

        var responses = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => client.SendAsync(Request(), _ct)));

        Assert.All(responses, r => Assert.Equal(ApnsOutcome.Delivered, r.Outcome));
        Assert.Equal(40, mock.RequestCount);
        Assert.InRange(mock.MaxConcurrentRequests, 2, 4);
    }

    [Fact]
    public async Task SendAsync_Should_SendTheFirstRequestAlone_When_PoolIsNew()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);
        mock.StallNext();

        var burst = Enumerable.Range(0, 10).Select(_ => client.SendAsync(Request(), _ct)).ToList();
        await mock.WaitForStalledAsync(1, Patience);
        // The other nine are parked behind the first answer, not on their way: then the count below is final.
        while (client.WarmUpWaiters < 9)
        {
            await Task.Delay(10, _ct);
        }

        var receivedWhileFirstWasOpen = mock.RequestCount;
        mock.ReleaseStalled();
        var responses = await Task.WhenAll(burst);

        Assert.Equal(1, receivedWhileFirstWasOpen);
        Assert.All(responses, r => Assert.Equal(ApnsOutcome.Delivered, r.Outcome));
        Assert.Equal(10, mock.RequestCount);
        Assert.Equal(1, mock.Requests[0].ConcurrentAtArrival);
        Assert.True(client.IsWarm);
    }

    [Fact]
    public async Task SendAsync_Should_RefuseBeforeSending_When_PayloadIsTooLarge()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);
        var big = new byte[4097];
        big.AsSpan().Fill((byte)' ');

        var response = await client.SendAsync(Request() with { Payload = big }, _ct);
        var voip = await client.SendAsync(Request() with { Payload = big, PushType = ApnsPushType.Voip }, _ct);

        Assert.Equal((0, ApnsReasons.PayloadTooLarge, ApnsOutcome.Permanent), (response.Status, response.Reason, response.Outcome));
        Assert.Equal(ApnsOutcome.Delivered, voip.Outcome);
        Assert.Equal(1, mock.RequestCount);
    }

    [Theory]
    [InlineData("../../x")]
    [InlineData("abc?x=1")]
    [InlineData("")]
    public async Task SendAsync_Should_RejectTokenBeforeSending_When_TokenIsNotHex(string token)
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);

        var response = await client.SendAsync(Request(token), _ct);

        Assert.Equal((0, ApnsReasons.BadDeviceToken, ApnsOutcome.TokenRejected), (response.Status, response.Reason, response.Outcome));
        Assert.Equal(0, mock.RequestCount);
    }

    [Fact]
    public async Task SendAsync_Should_RefuseBeforeSending_When_CollapseIdIsTooLong()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);

        var response = await client.SendAsync(Request(collapseId: new string('c', 65)), _ct);

        Assert.Equal((ApnsReasons.BadCollapseId, ApnsOutcome.Permanent), (response.Reason, response.Outcome));
        Assert.Equal(0, mock.RequestCount);
    }

    [Fact]
    public async Task SendAsync_Should_UseOneConnection_When_ManyPushesFollowEachOther()
    {
        await using var mock = await StartMockAsync();
        using var client = CreateClient(mock);

        for (var i = 0; i < 5; i++)
        {
            await client.SendAsync(Request(), _ct);
        }

        await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => client.SendAsync(Request(), _ct)));

        Assert.Equal(1, mock.ConnectionCount);
    }
}
