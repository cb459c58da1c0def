using Monal.Push.Tests.Fixtures;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Delivery.Apns;
using Monal.Push.MockApns;

namespace Monal.Push.Tests.Delivery;

// The mock must refuse what Apple refuses, or the client tests prove nothing.
public sealed class MockApnsServerTests : IDisposable
{
    private const string Topic = "im.monal.test";

    private readonly ProviderKeyFile _key = new();
    private readonly ManualClock _time = new();
    private readonly ApnsJwtProvider _jwt;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));

    public MockApnsServerTests() =>
        _jwt = ApnsJwtProvider.FromKeyFile(_key.TeamId, _key.KeyId, _key.Path, _time, NullLogger.Instance);

    private CancellationToken _ct => _timeout.Token;

    public void Dispose()
    {
        _timeout.Dispose();
        _jwt.Dispose();
        _key.Dispose();
    }

    private Task<MockApnsServer> StartMockAsync(TimeProvider? mockTime = null, bool enforceTokenUpdates = false) =>
        MockApnsServer.StartAsync(new MockApnsOptions
        {
            UseTls = false,
            Topic = Topic,
            ProviderPublicKeyPem = _key.PublicKeyPem,
            KeyId = _key.KeyId,
            TeamId = _key.TeamId,
            TimeProvider = mockTime ?? _time,
            EnforceTokenUpdateInterval = enforceTokenUpdates,
        }, _ct);

    private async Task<(int Status, string Body)> PostAsync(
        MockApnsServer mock, Action<HttpRequestMessage> change, string? path = null, byte[]? payload = null, string? authorization = "default")
    {
        using var http = new HttpClient();
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(mock.Endpoint, path ?? "/3/device/" + ApnsClientTests.NewToken()))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(payload ?? """{"aps":{}}"""u8.ToArray()),
        };
        message.Headers.TryAddWithoutValidation("apns-topic", Topic);
        message.Headers.TryAddWithoutValidation("apns-priority", "10");
        message.Headers.TryAddWithoutValidation("apns-push-type", "alert");
        message.Headers.TryAddWithoutValidation("apns-id", Guid.NewGuid().ToString());
        message.Headers.TryAddWithoutValidation("apns-expiration", "0");
        if (authorization is not null)
        {
            message.Headers.TryAddWithoutValidation("authorization", authorization == "default" ? _jwt.GetAuthorizationHeader() : authorization);
        }

        change(message);
        using var response = await http.SendAsync(message, _ct);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync(_ct));
    }

    [Fact]
    public async Task Mock_Should_Answer200_When_RequestIsValid()
    {
        await using var mock = await StartMockAsync();

        var (status, body) = await PostAsync(mock, _ => { });

        Assert.Equal(200, status);
        Assert.Empty(body);
    }

    [Theory]
    [InlineData("apns-priority", "7", "BadPriority")]
    [InlineData("apns-expiration", "tomorrow", "BadExpirationDate")]
    [InlineData("apns-id", "not-a-uuid", "BadMessageId")]
    [InlineData("apns-topic", "im.other.app", "DeviceTokenNotForTopic")]
    [InlineData("apns-push-type", "shout", "InvalidPushType")]
    public async Task Mock_Should_Answer400_When_HeaderIsInvalid(string header, string value, string reason)
    {
        await using var mock = await StartMockAsync();

        var (status, body) = await PostAsync(mock, m =>
        {
            m.Headers.Remove(header);
            m.Headers.TryAddWithoutValidation(header, value);
        });

        Assert.Equal(400, status);
        Assert.Contains($"\"reason\":\"{reason}\"", body);
    }

    [Fact]
    public async Task Mock_Should_AnswerMissingTopic_When_TopicHeaderIsAbsent()
    {
        await using var mock = await StartMockAsync();

        var (status, body) = await PostAsync(mock, m => m.Headers.Remove("apns-topic"));

        Assert.Equal(400, status);
        Assert.Contains("MissingTopic", body);
    }

    [Theory]
    [InlineData("/3/device/abcd", 400, "BadDeviceToken")]
    [InlineData("/3/device/", 400, "MissingDeviceToken")]
    [InlineData("/2/device/0000", 404, "BadPath")]
    public async Task Mock_Should_RefusePath_When_TokenOrPathIsWrong(string path, int expectedStatus, string reason)
    {
        await using var mock = await StartMockAsync();

        var (status, body) = await PostAsync(mock, _ => { }, path);

        Assert.Equal(expectedStatus, status);
        Assert.Contains(reason, body);
    }

    [Fact]
    public async Task Mock_Should_Answer413_When_PayloadExceeds4096Bytes()
    {
        await using var mock = await StartMockAsync();

        var (status, body) = await PostAsync(mock, _ => { }, payload: Encoding.UTF8.GetBytes(new string(' ', 4097)));

        Assert.Equal(413, status);
        Assert.Contains("PayloadTooLarge", body);
    }

    [Theory]
    [InlineData(null, "MissingProviderToken")]
    [InlineData("bearer a.b.c", "InvalidProviderToken")]
    public async Task Mock_Should_Answer403_When_ProviderTokenIsMissingOrInvalid(string? authorization, string reason)
    {
        await using var mock = await StartMockAsync();

        var (status, body) = await PostAsync(mock, _ => { }, authorization: authorization);

        Assert.Equal(403, status);
        Assert.Contains(reason, body);
    }

    [Fact]
    public async Task Mock_Should_AnswerExpiredProviderToken_When_IatIsOlderThanAnHour()
    {
        var mockTime = new ManualClock(_time.GetUtcNow().AddMinutes(61));
        await using var mock = await StartMockAsync(mockTime);
        using var client = new ApnsClient(new ApnsClientOptions { Endpoint = mock.Endpoint, JwtProvider = _jwt }, _time, NullLogger.Instance);
        var before = _jwt.GetAuthorizationHeader();

        var response = await client.SendAsync(
            new ApnsRequest(ApnsClientTests.NewToken(), Topic, ApnsPushType.Alert, ApnsPriority.Immediate, ApnsPayload.MonalAlert.Utf8Json, Guid.NewGuid(), null),
            _ct);

        Assert.Equal((403, "ExpiredProviderToken", ApnsOutcome.Transient), (response.Status, response.Reason, response.Outcome));
        // Our token is brand new by our clock: a new one would not help, and Apple would count it as an update.
        Assert.Same(before, _jwt.GetAuthorizationHeader());
    }

    [Fact]
    public async Task Mock_Should_RefuseATamperedSignature_When_TheSameClaimsWereAcceptedBefore()
    {
        await using var mock = await StartMockAsync();
        var valid = _jwt.GetAuthorizationHeader();
        var signature = valid[(valid.LastIndexOf('.') + 1)..];
        var tampered = valid[..(valid.LastIndexOf('.') + 1)] + (signature[0] == 'A' ? 'B' : 'A') + signature[1..];

        var (accepted, _) = await PostAsync(mock, _ => { }, authorization: valid);
        var (refused, body) = await PostAsync(mock, _ => { }, authorization: tampered);
        var (acceptedAgain, _) = await PostAsync(mock, _ => { }, authorization: valid);

        Assert.Equal((200, 403, 200), (accepted, refused, acceptedAgain));
        Assert.Contains("InvalidProviderToken", body);
    }

    [Fact]
    public async Task Mock_Should_AnswerExpiredProviderToken_When_AnAcceptedTokenIsSentAgainAfterAnHour()
    {
        await using var mock = await StartMockAsync();
        var authorization = _jwt.GetAuthorizationHeader();

        var (fresh, _) = await PostAsync(mock, _ => { }, authorization: authorization);
        _time.Advance(TimeSpan.FromMinutes(61));
        var (stale, body) = await PostAsync(mock, _ => { }, authorization: authorization);

        Assert.Equal((200, 403), (fresh, stale));
        Assert.Contains("ExpiredProviderToken", body);
    }

    [Fact]
    public async Task Mock_Should_AnswerTooManyProviderTokenUpdates_When_KeyChangesTokenWithin20Minutes()
    {
        await using var mock = await StartMockAsync(enforceTokenUpdates: true);
        using var second = ApnsJwtProvider.FromKeyFile(_key.TeamId, _key.KeyId, _key.Path, _time, NullLogger.Instance);

        var (first, _) = await PostAsync(mock, _ => { });
        _time.Advance(TimeSpan.FromMinutes(5));
        var (tooSoon, body) = await PostAsync(mock, _ => { }, authorization: second.GetAuthorizationHeader());

        Assert.Equal(200, first);
        Assert.Equal(429, tooSoon);
        Assert.Contains("TooManyProviderTokenUpdates", body);
    }

    [Fact]
    public async Task Mock_Should_RecordClaimsAndHeaders_When_RequestArrives()
    {
        await using var mock = await StartMockAsync();

        await PostAsync(mock, _ => { });

        var received = Assert.Single(mock.Requests);
        Assert.Equal(200, received.Status);
        Assert.Equal(64, received.DeviceToken!.Length);
        Assert.Equal("""{"aps":{}}""", Encoding.UTF8.GetString(received.Payload));
        Assert.Equal(_key.KeyId, received.ProviderToken!.KeyId);
        Assert.True(received.ProviderToken.SignatureValid);
    }
}
