using Monal.Push.Delivery.Apns;

namespace Monal.Push.Tests.Delivery;

public sealed class ApnsResponseClassifierTests
{
    [Theory]
    [InlineData(200, null, nameof(ApnsOutcome.Delivered))]
    [InlineData(400, "BadCollapseId", nameof(ApnsOutcome.Permanent))]
    [InlineData(400, "BadDeviceToken", nameof(ApnsOutcome.TokenRejected))]
    [InlineData(400, "BadExpirationDate", nameof(ApnsOutcome.Permanent))]
    [InlineData(400, "BadMessageId", nameof(ApnsOutcome.Permanent))]
    [InlineData(400, "BadPriority", nameof(ApnsOutcome.Permanent))]
    [InlineData(400, "BadTopic", nameof(ApnsOutcome.Permanent))]
    [InlineData(400, "DeviceTokenNotForTopic", nameof(ApnsOutcome.TokenRejected))]
    [InlineData(400, "DuplicateHeaders", nameof(ApnsOutcome.Permanent))]
    [InlineData(400, "IdleTimeout", nameof(ApnsOutcome.Transient))]
    [InlineData(400, "InvalidPushType", nameof(ApnsOutcome.Permanent))]
    [InlineData(400, "MissingDeviceToken", nameof(ApnsOutcome.Permanent))]
    [InlineData(400, "MissingTopic", nameof(ApnsOutcome.Permanent))]
    [InlineData(400, "PayloadEmpty", nameof(ApnsOutcome.Permanent))]
    [InlineData(400, "TopicDisallowed", nameof(ApnsOutcome.Permanent))]
    [InlineData(400, null, nameof(ApnsOutcome.Permanent))]
    [InlineData(403, "BadCertificate", nameof(ApnsOutcome.Permanent))]
    [InlineData(403, "BadCertificateEnvironment", nameof(ApnsOutcome.Permanent))]
    [InlineData(403, "ExpiredProviderToken", nameof(ApnsOutcome.Transient))]
    [InlineData(403, "Forbidden", nameof(ApnsOutcome.Permanent))]
    [InlineData(403, "InvalidProviderToken", nameof(ApnsOutcome.Permanent))]
    [InlineData(403, "MissingProviderToken", nameof(ApnsOutcome.Permanent))]
    [InlineData(403, "UnrelatedKeyIdInToken", nameof(ApnsOutcome.Permanent))]
    [InlineData(403, "BadEnvironmentKeyIdInToken", nameof(ApnsOutcome.Permanent))]
    [InlineData(404, "BadPath", nameof(ApnsOutcome.Permanent))]
    [InlineData(405, "MethodNotAllowed", nameof(ApnsOutcome.Permanent))]
    [InlineData(410, "ExpiredToken", nameof(ApnsOutcome.TokenInvalidated))]
    [InlineData(410, "Unregistered", nameof(ApnsOutcome.TokenInvalidated))]
    [InlineData(413, "PayloadTooLarge", nameof(ApnsOutcome.Permanent))]
    [InlineData(429, "TooManyProviderTokenUpdates", nameof(ApnsOutcome.Transient))]
    [InlineData(429, "TooManyRequests", nameof(ApnsOutcome.Transient))]
    [InlineData(500, "InternalServerError", nameof(ApnsOutcome.Transient))]
    [InlineData(503, "ServiceUnavailable", nameof(ApnsOutcome.Transient))]
    [InlineData(503, "Shutdown", nameof(ApnsOutcome.Transient))]
    [InlineData(502, null, nameof(ApnsOutcome.Transient))]
    [InlineData(0, "Timeout", nameof(ApnsOutcome.Transient))]
    [InlineData(0, "ConnectionLost", nameof(ApnsOutcome.Transient))]
    public void Classify_Should_ReturnOutcome_When_AppleAnswersStatusAndReason(int status, string? reason, string expected) =>
        Assert.Equal(Enum.Parse<ApnsOutcome>(expected), ApnsResponseClassifier.Classify(status, reason));

    [Fact]
    public void ParseErrorBody_Should_ReadReasonAndMillisecondTimestamp_When_BodyIsA410()
    {
        var (reason, timestamp) = ApnsClient.ParseErrorBody("""{"reason":"Unregistered","timestamp":1454402113000}"""u8);

        Assert.Equal("Unregistered", reason);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1454402113000), timestamp);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("""{"reason":12,"timestamp":"x"}""")]
    [InlineData("""{"timestamp":99999999999999999999}""")]
    public void ParseErrorBody_Should_ReturnNulls_When_BodyIsGarbled(string body)
    {
        var (reason, timestamp) = ApnsClient.ParseErrorBody(System.Text.Encoding.UTF8.GetBytes(body));

        Assert.Null(reason);
        Assert.Null(timestamp);
    }

    [Fact]
    public void TransportReason_Should_SayRefusedStream_When_ServerRefusedTheStream()
    {
        var refused = new HttpRequestException("sending failed", new HttpProtocolException(0x7, "REFUSED_STREAM", null));
        var reset = new HttpProtocolException(0x2, "INTERNAL_ERROR", null);

        Assert.Equal(ApnsReasons.RefusedStream, ApnsClient.TransportReason(refused));
        Assert.Equal(ApnsReasons.ProtocolError, ApnsClient.TransportReason(reset));
        Assert.Equal(ApnsReasons.ConnectionFailed, ApnsClient.TransportReason(new HttpRequestException(HttpRequestError.ConnectionError)));
    }
}
