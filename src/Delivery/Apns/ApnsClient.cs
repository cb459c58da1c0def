using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Monal.Push.Delivery.Apns;

/// <summary>
/// One connection pool to one APNs endpoint with one credential, reused for the life of the process as Apple asks
/// ("Sending notification requests to APNs": keep connections open, do not open one per push).
///
/// Each call sends exactly one request and never throws for what Apple or the network did: the answer, or a Status 0
/// Transient response for a transport failure, tells the dispatcher what to do. Only the caller's cancellation throws.
///
/// Warm-up: APNs allows one stream on a new connection until it has seen a valid provider token, then raises the
/// limit; .NET assumes 100 until the server's SETTINGS say otherwise and would meanwhile spill a burst onto many new
/// connections. So until a request has been answered (with anything but a 403), requests go one at a time.
/// </summary>
internal sealed class ApnsClient : IDisposable
{
    private const int MaxDeviceTokenLength = 400;
    private const int MaxCollapseIdBytes = 64;

    private readonly ApnsClientOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private HttpClient _http;
    private int _replacements;
    private int _warmUpWaiters;
    private readonly SemaphoreSlim _inFlight;
    private readonly SemaphoreSlim _warmUpGate = new(1, 1);
    private readonly string _devicePathPrefix;
    private volatile bool _warm;

    public ApnsClient(ApnsClientOptions options, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        if (options.JwtProvider is not null && options.ClientCertificate is not null)
        {
            throw new ArgumentException("Use either token or certificate authentication, not both.", nameof(options));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConcurrentRequests, 1);
        if (!options.Endpoint.IsAbsoluteUri || (options.Endpoint.Scheme != Uri.UriSchemeHttps && options.Endpoint.Scheme != Uri.UriSchemeHttp))
        {
            throw new ArgumentException("The APNs endpoint must be an absolute https:// (or http:// for h2c) URL.", nameof(options));
        }

        _options = options;
        _time = time;
        _logger = logger;
        _inFlight = new SemaphoreSlim(options.MaxConcurrentRequests, options.MaxConcurrentRequests);
        _devicePathPrefix = options.Endpoint.GetLeftPart(UriPartial.Authority) + "/3/device/";

        _http = NewHttpClient(options);
        Log.PoolCreated(_logger, options.Name, options.Endpoint, options.MaxConcurrentRequests);
    }

    public Uri Endpoint => _options.Endpoint;

    public string Name => _options.Name;

    public bool IsWarm => _warm;

    // Requests waiting for the first answer of a new pool (warm-up) before they may be sent.
    public int WarmUpWaiters => Volatile.Read(ref _warmUpWaiters);

    // How often a stuck connection was given up for a new one.
    public int Replacements => Volatile.Read(ref _replacements);

    public async Task<ApnsResponse> SendAsync(ApnsRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var refused = RefuseLocally(request);
        if (refused is not null)
        {
            if (refused.Outcome == ApnsOutcome.Permanent)
            {
                Log.PushRefusedLocally(_logger, _options.Name, request.ApnsId, refused.Reason);
            }
            else
            {
                LogAnswer(request, refused);
            }

            return refused;
        }

        await _inFlight.WaitAsync(ct);
        try
        {
            if (!_warm)
            {
                Interlocked.Increment(ref _warmUpWaiters);
                try
                {
                    await _warmUpGate.WaitAsync(ct);
                }
                finally
                {
                    Interlocked.Decrement(ref _warmUpWaiters);
                }

                try
                {
                    if (!_warm)
                    {
                        var first = await SendOnceAsync(request, ct);
                        if (first.Status != 0 && first.Status != 403)
                        {
                            _warm = true;
                            Log.PoolWarmedUp(_logger, _options.Name);
                        }

                        return first;
                    }
                }
                finally
                {
                    _warmUpGate.Release();
                }
            }

            return await SendOnceAsync(request, ct);
        }
        finally
        {
            _inFlight.Release();
        }
    }

    public void Dispose()
    {
        Volatile.Read(ref _http).Dispose();
        _inFlight.Dispose();
        _warmUpGate.Dispose();
    }

    private static HttpClient NewHttpClient(ApnsClientOptions options)
    {
        var handler = CreateHandler(options);
        var outer = options.HandlerFactory?.Invoke(handler) ?? handler;
        return new HttpClient(outer, disposeHandler: true)
        {
            // Our own timeout per request (RequestTimeout) starts once a slot is free; HttpClient's would include the wait.
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    // A request ran past its deadline: the gateway accepted the stream and went silent (issue 15, point 2). HTTP/2
    // pings may still be answered, so the handler would keep the connection; give the whole pool up for a new one.
    // Only the first timeout on a pool replaces it (the others of the same stall find it replaced already), and the
    // old pool is disposed once every request on it has passed its own deadline.
    private void ReplaceStuckConnection(HttpClient stuck)
    {
        var fresh = NewHttpClient(_options);
        if (Interlocked.CompareExchange(ref _http, fresh, stuck) != stuck)
        {
            fresh.Dispose();
            return;
        }

        _warm = false;
        var count = Interlocked.Increment(ref _replacements);
        Log.StuckConnectionReplaced(_logger, _options.Name, _options.RequestTimeout, count);
        _ = Task.Delay(_options.RequestTimeout + TimeSpan.FromSeconds(5), _time)
            .ContinueWith(_ => stuck.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    private static SocketsHttpHandler CreateHandler(ApnsClientOptions options)
    {
        var ssl = new SslClientAuthenticationOptions();
        if (options.ClientCertificate is not null)
        {
            ssl.ClientCertificates = new X509CertificateCollection { options.ClientCertificate };
        }

        if (options.ServerCertificateValidation is not null)
        {
            ssl.RemoteCertificateValidationCallback = options.ServerCertificateValidation;
        }

        return new SocketsHttpHandler
        {
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = options.PooledConnectionIdleTimeout,
            KeepAlivePingDelay = options.KeepAlivePingDelay,
            KeepAlivePingTimeout = options.KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            // Apple's limit per connection is high once warm, but a second connection beats queueing behind a full one.
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = options.ConnectTimeout,
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            SslOptions = ssl,
        };
    }

    // Refuse what Apple would refuse anyway, and anything that could change the request path.
    private static ApnsResponse? RefuseLocally(ApnsRequest request)
    {
        var token = request.DeviceToken;
        if (string.IsNullOrEmpty(token) || token.Length > MaxDeviceTokenLength || !IsHex(token))
        {
            return ApnsResponse.RefusedLocally(ApnsReasons.BadDeviceToken, request.ApnsId, ApnsOutcome.TokenRejected);
        }

        if (string.IsNullOrEmpty(request.Topic))
        {
            return ApnsResponse.RefusedLocally(ApnsReasons.MissingTopic, request.ApnsId, ApnsOutcome.Permanent);
        }

        if (request.Payload.IsEmpty)
        {
            return ApnsResponse.RefusedLocally(ApnsReasons.PayloadEmpty, request.ApnsId, ApnsOutcome.Permanent);
        }

        if (request.Payload.Length > request.PushType.MaxPayloadBytes())
        {
            return ApnsResponse.RefusedLocally(ApnsReasons.PayloadTooLarge, request.ApnsId, ApnsOutcome.Permanent);
        }

        if (request.CollapseId is not null && Encoding.UTF8.GetByteCount(request.CollapseId) > MaxCollapseIdBytes)
        {
            return ApnsResponse.RefusedLocally(ApnsReasons.BadCollapseId, request.ApnsId, ApnsOutcome.Permanent);
        }

        if (request.TimeToLive < TimeSpan.Zero)
        {
            return ApnsResponse.RefusedLocally(ApnsReasons.BadExpirationDate, request.ApnsId, ApnsOutcome.Permanent);
        }

        return null;
    }

    private static bool IsHex(string value)
    {
        foreach (var c in value)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }

        return true;
    }

    private async Task<ApnsResponse> SendOnceAsync(ApnsRequest request, CancellationToken ct)
    {
        using var message = CreateMessage(request, out var authorization);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.RequestTimeout);
        ApnsResponse result;
        var http = Volatile.Read(ref _http);
        try
        {
            using var response = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var status = (int)response.StatusCode;
            var apnsId = ReadApnsId(response.Headers) ?? request.ApnsId;
            if (status == 200)
            {
                Log.PushDelivered(_logger, _options.Name, apnsId);
                return ApnsResponse.FromHttp(status, null, apnsId, null);
            }

            var body = await response.Content.ReadAsByteArrayAsync(timeout.Token);
            var (reason, timestamp) = ParseErrorBody(body);
            result = ApnsResponse.FromHttp(status, reason, apnsId, timestamp);
            if (status == 403 && reason == ApnsReasons.ExpiredProviderToken && authorization is not null)
            {
                _options.JwtProvider!.OnExpiredProviderToken(authorization);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            result = ApnsResponse.TransportFailure(ApnsReasons.Timeout, request.ApnsId);
            ReplaceStuckConnection(http);
        }
        catch (ObjectDisposedException) when (!ct.IsCancellationRequested)
        {
            // Sent on a pool that was replaced and disposed meanwhile: nothing reached Apple's answer; retried later.
            result = ApnsResponse.TransportFailure(ApnsReasons.Timeout, request.ApnsId);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            // The connection is gone or never came up; the next one must be warmed up again.
            _warm = false;
            result = ApnsResponse.TransportFailure(TransportReason(ex), request.ApnsId);
            Log.TransportFailed(_logger, _options.Name, request.ApnsId, result.Reason, ex);
            return result;
        }

        LogAnswer(request, result);
        return result;
    }

    private HttpRequestMessage CreateMessage(ApnsRequest request, out string? authorization)
    {
        var message = new HttpRequestMessage(HttpMethod.Post, new Uri(_devicePathPrefix + request.DeviceToken, UriKind.Absolute))
        {
            // docs/benchmarks.md: HttpClient's defaults do not apply to messages we build; without these every request fails
            // against an HTTP/2-only endpoint. Over http:// this also gives h2c with prior knowledge.
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ReadOnlyMemoryContent(request.Payload),
        };
        var headers = message.Headers;
        headers.TryAddWithoutValidation("apns-topic", request.Topic);
        headers.TryAddWithoutValidation("apns-push-type", request.PushType.ToHeaderValue());
        headers.TryAddWithoutValidation("apns-priority", PriorityHeader(request.Priority));
        headers.TryAddWithoutValidation("apns-id", request.ApnsId.ToString("D"));
        if (request.TimeToLive is { } ttl)
        {
            // Apple wants an absolute UNIX time; 0 means "deliver now or drop".
            var expiration = ttl == TimeSpan.Zero ? 0 : (_time.GetUtcNow() + ttl).ToUnixTimeSeconds();
            headers.TryAddWithoutValidation("apns-expiration", expiration.ToString(CultureInfo.InvariantCulture));
        }

        if (request.CollapseId is not null)
        {
            headers.TryAddWithoutValidation("apns-collapse-id", request.CollapseId);
        }

        authorization = _options.JwtProvider?.GetAuthorizationHeader();
        if (authorization is not null)
        {
            headers.TryAddWithoutValidation("authorization", authorization);
        }

        return message;
    }

    private static string PriorityHeader(ApnsPriority priority) => priority switch
    {
        ApnsPriority.Immediate => "10",
        ApnsPriority.PowerConsiderate => "5",
        ApnsPriority.Throttled => "1",
        _ => ((int)priority).ToString(CultureInfo.InvariantCulture),
    };

    private static Guid? ReadApnsId(HttpResponseHeaders headers)
    {
        if (headers.NonValidated.TryGetValues("apns-id", out var values))
        {
            foreach (var value in values)
            {
                if (Guid.TryParse(value, out var id))
                {
                    return id;
                }
            }
        }

        return null;
    }

    // The error body: {"reason":"Unregistered","timestamp":1454402113000}, timestamp in milliseconds since the epoch.
    internal static (string? Reason, DateTimeOffset? Timestamp) ParseErrorBody(ReadOnlySpan<byte> body)
    {
        string? reason = null;
        DateTimeOffset? timestamp = null;
        if (body.IsEmpty)
        {
            return (reason, timestamp);
        }

        try
        {
            var reader = new Utf8JsonReader(body);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return (reason, timestamp);
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("reason"u8))
                {
                    reader.Read();
                    reason = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (reader.ValueTextEquals("timestamp"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var ms))
                    {
                        timestamp = DateTimeOffset.FromUnixTimeMilliseconds(ms);
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException)
        {
            // A garbled body still leaves the status to classify by.
        }
        catch (ArgumentOutOfRangeException)
        {
            // A timestamp outside DateTimeOffset's range.
        }

        return (reason, timestamp);
    }

    internal static string TransportReason(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is HttpProtocolException protocol)
            {
                // RFC 9113 7: REFUSED_STREAM (0x7) means the server did not process the stream at all.
                return protocol.ErrorCode == 0x7 ? ApnsReasons.RefusedStream : ApnsReasons.ProtocolError;
            }
        }

        return ex is HttpRequestException request
            ? request.HttpRequestError switch
            {
                HttpRequestError.NameResolutionError or HttpRequestError.ConnectionError => ApnsReasons.ConnectionFailed,
                HttpRequestError.SecureConnectionError => ApnsReasons.TlsFailure,
                HttpRequestError.HttpProtocolError => ApnsReasons.ProtocolError,
                _ => ApnsReasons.ConnectionLost,
            }
            : ApnsReasons.ConnectionLost;
    }

    private void LogAnswer(ApnsRequest request, ApnsResponse response)
    {
        switch (response.Outcome)
        {
            case ApnsOutcome.Transient:
                Log.PushDeferred(_logger, _options.Name, response.ApnsId, response.Status, response.Reason);
                break;
            case ApnsOutcome.TokenInvalidated or ApnsOutcome.TokenRejected:
                if (_logger.IsEnabled(LogLevel.Debug))
                {
                    var tokenHash = _options.TokenRedactor(request.DeviceToken);
                    Log.TokenRefused(_logger, _options.Name, response.ApnsId, tokenHash, response.Status, response.Reason);
                }

                break;
            case ApnsOutcome.Permanent:
                Log.PushRejected(_logger, _options.Name, response.ApnsId, response.Status, response.Reason);
                break;
            default:
                break;
        }
    }
}
