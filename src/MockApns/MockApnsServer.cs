using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Monal.Push.MockApns;

/// <summary>
/// An APNs provider API look-alike on Kestrel (HTTP/2 only, TLS or h2c) that checks requests the way Apple documents
/// ("Sending notification requests to APNs", "Handling notification responses from APNs"), records them, and can be
/// told to answer anything, stall, reset a stream or drop the connection.
/// </summary>
public sealed partial class MockApnsServer : IAsyncDisposable
{
    private static readonly HashSet<string> PushTypes =
        ["alert", "background", "voip", "location", "complication", "fileprovider", "mdm", "liveactivity", "pushtotalk", "widgets", "controls"];

    private readonly MockApnsOptions _options;
    private readonly WebApplication _app;
    private readonly ECDsa? _providerKey;
    private readonly ConcurrentDictionary<string, ConnectionContext> _connections = new();
    private readonly ConcurrentQueue<MockApnsRequest> _requests = new();
    // apns-ids answered 200, as values in striped sets: a benchmark delivers millions, and one object per id would be
    // garbage the load generator's collector copies while it measures.
    private readonly HashSet<Guid>[] _delivered = [.. Enumerable.Range(0, 16).Select(_ => new HashSet<Guid>())];
    private readonly Lock _lock = new();
    private readonly List<ScriptedAction> _next = [];
    private readonly Dictionary<string, ScriptedAction> _perToken = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, (string Token, DateTimeOffset ChangedAt)> _tokensByKeyId = new(StringComparer.Ordinal);
    private TaskCompletionSource _release = NewRelease();
    private int _sequence;
    private int _current;
    private int _maxConcurrent;
    private int _stalled;
    private int _tokenChanges;
    private long _latencyTicks;
    private long _stallUntilTicks;
    private int _abandoned;
    private int _duplicates;

    private MockApnsServer(MockApnsOptions options, WebApplication app, X509Certificate2? certificate)
    {
        _options = options;
        _app = app;
        Certificate = certificate;
        _latencyTicks = options.Latency.Ticks;
        if (options.ProviderPublicKeyPem is not null)
        {
            _providerKey = ECDsa.Create();
            _providerKey.ImportFromPem(options.ProviderPublicKeyPem);
        }
    }

    public Uri Endpoint { get; private set; } = null!;

    // The server's self-signed certificate (null for h2c).
    public X509Certificate2? Certificate { get; }

    // Give this to the client so that it trusts exactly this mock's certificate.
    public RemoteCertificateValidationCallback ServerCertificateValidation =>
        (_, certificate, _, _) => certificate is not null && Certificate is not null
            && certificate.GetCertHashString(HashAlgorithmName.SHA256) == Certificate.GetCertHashString(HashAlgorithmName.SHA256);

    // Empty when MockApnsOptions.RecordRequests is off (RequestCount still counts).
    public IReadOnlyList<MockApnsRequest> Requests => [.. _requests.OrderBy(r => r.Sequence)];

    public int RequestCount => Volatile.Read(ref _sequence);

    public int MaxConcurrentRequests => Volatile.Read(ref _maxConcurrent);

    public int StalledRequests => Volatile.Read(ref _stalled);

    /// <summary>
    /// Pushes answered 200 whose apns-id had already been answered 200: the same notification delivered twice, which
    /// the pipeline promises never to do. Counted whether or not requests are recorded, so benchmarks measure it too.
    /// </summary>
    public int DuplicateDeliveries => Volatile.Read(ref _duplicates);

    // How often a key id's JWT changed after its first one.
    public int ProviderTokenChanges => Volatile.Read(ref _tokenChanges);

    public int ConnectionCount => _requests.Select(r => r.ConnectionId).Distinct().Count();

    public TimeSpan Latency
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _latencyTicks));
        set => Interlocked.Exchange(ref _latencyTicks, value.Ticks);
    }

    public static async Task<MockApnsServer> StartAsync(MockApnsOptions? options = null, CancellationToken ct = default)
    {
        options ??= new MockApnsOptions();
        var certificate = options.UseTls ? MockApnsCertificates.CreateServerCertificate() : null;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        MockApnsServer? server = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.Http2.MaxStreamsPerConnection = options.MaxStreamsPerConnection;
            kestrel.Listen(IPAddress.Loopback, options.Port, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                // Before TLS: this is the TCP connection, which DropConnectionNext aborts.
                listen.Use(next => async connection =>
                {
                    server!._connections[connection.ConnectionId] = connection;
                    try
                    {
                        await next(connection);
                    }
                    finally
                    {
                        server!._connections.TryRemove(connection.ConnectionId, out _);
                    }
                });
                if (certificate is not null)
                {
                    listen.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        ServerCertificate = certificate,
                        ClientCertificateMode = options.RequireClientCertificate ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.NoCertificate,
                        ClientCertificateValidation = (client, _, _) => options.ClientCertificateValidator?.Invoke(client) ?? true,
                    });
                }
            });
        });
        var app = builder.Build();
        server = new MockApnsServer(options, app, certificate);
        app.Run(server.HandleAsync);
        await app.StartAsync(ct);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var port = new Uri(address).Port;
        server.Endpoint = new Uri($"{(options.UseTls ? "https" : "http")}://127.0.0.1:{port}/");
        return server;
    }

    // Answer this status and reason to every request for the token (after the request passed the checks).
    public void RespondToToken(string deviceToken, int status, string reason, DateTimeOffset? timestamp = null)
    {
        lock (_lock)
        {
            _perToken[deviceToken] = new ScriptedAction(ActionKind.Respond, 1, status, reason, timestamp);
        }
    }

    // Answer this status and reason to the next count valid requests.
    public void RespondToNext(int count, int status, string? reason, DateTimeOffset? timestamp = null) =>
        Enqueue(new ScriptedAction(ActionKind.Respond, count, status, reason, timestamp));

    // Hold the next count valid requests without answering until ReleaseStalled (or the client gives up).
    public void StallNext(int count = 1) => Enqueue(new ScriptedAction(ActionKind.Stall, count, 0, null, null));

    // A silent gateway for a while (issue 15): every valid request arriving in the next `duration` is accepted and
    // never answered, as on a dead connection, until the client gives up (its deadline); later requests are answered
    // as usual. (Answering the held ones when the silence ended could race the client's deadline: an answer written as
    // the client reset the stream counted as delivered, and the client's retry made a second 200.)
    public void StallFor(TimeSpan duration) =>
        Interlocked.Exchange(ref _stallUntilTicks, (_options.TimeProvider.GetUtcNow() + duration).UtcTicks);

    // True while a StallFor window lasts.
    public bool IsSilent => Interlocked.Read(ref _stallUntilTicks) > _options.TimeProvider.GetUtcNow().UtcTicks;

    // Requests whose client gave up before reading the answer (a stall, or a deadline that passed as it was written).
    public int AbandonedByClient => Volatile.Read(ref _abandoned);

    // Reset the stream of the next count valid requests (HttpContext.Abort: RST_STREAM).
    public void ResetNext(int count = 1) => Enqueue(new ScriptedAction(ActionKind.Reset, count, 0, null, null));

    // Abort the whole TCP connection of the next count valid requests.
    public void DropConnectionNext(int count = 1) => Enqueue(new ScriptedAction(ActionKind.Drop, count, 0, null, null));

    // Let every stalled request go on (they are answered 200).
    public void ReleaseStalled()
    {
        TaskCompletionSource release;
        lock (_lock)
        {
            release = _release;
            _release = NewRelease();
        }

        release.TrySetResult();
    }

    public async Task WaitForStalledAsync(int count, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (StalledRequests < count)
        {
            await Task.Delay(10, cts.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        ReleaseStalled();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(cts.Token);
        await _app.DisposeAsync();
        Certificate?.Dispose();
        _providerKey?.Dispose();
    }

    private static TaskCompletionSource NewRelease() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void Enqueue(ScriptedAction action)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(action.Remaining, 1);
        lock (_lock)
        {
            _next.Add(action);
        }
    }

    private ScriptedAction? TakeScripted(string token)
    {
        lock (_lock)
        {
            if (_next.Count > 0)
            {
                var action = _next[0];
                action.Remaining--;
                if (action.Remaining == 0)
                {
                    _next.RemoveAt(0);
                }

                return action;
            }

            return _perToken.GetValueOrDefault(token);
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var current = Interlocked.Increment(ref _current);
        var max = Volatile.Read(ref _maxConcurrent);
        while (current > max && Interlocked.CompareExchange(ref _maxConcurrent, current, max) != max)
        {
            max = Volatile.Read(ref _maxConcurrent);
        }

        try
        {
            await HandleCoreAsync(context, current);
        }
        finally
        {
            Interlocked.Decrement(ref _current);
        }
    }

    private async Task HandleCoreAsync(HttpContext context, int concurrentAtArrival)
    {
        var http = context.Request;
        var path = http.Path.Value ?? "";
        const string prefix = "/3/device/";
        var token = path.StartsWith(prefix, StringComparison.Ordinal) ? path[prefix.Length..] : null;
        var headers = http.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        var payload = await ReadBodyAsync(http, context.RequestAborted);
        var jwt = DecodeProviderToken(headers.GetValueOrDefault("authorization"));
        var recorded = new MockApnsRequest
        {
            Sequence = Interlocked.Increment(ref _sequence),
            Method = http.Method,
            Path = path,
            DeviceToken = token,
            Protocol = http.Protocol,
            IsHttps = http.IsHttps,
            ConnectionId = context.Connection.Id,
            Headers = headers,
            Payload = payload,
            ProviderToken = jwt,
            ClientCertificateThumbprint = context.Connection.ClientCertificate?.Thumbprint,
            ConcurrentAtArrival = concurrentAtArrival,
            ReceivedAt = _options.TimeProvider.GetUtcNow(),
        };
        if (_options.RecordRequests)
        {
            _requests.Enqueue(recorded);
        }

        try
        {
            await AnswerAsync(context, recorded, headers, jwt, token);
        }
        finally
        {
            // Answered or not: a test waits for this instead of reading Status while the answer is being decided.
            recorded.MarkDone();
        }
    }

    private async Task AnswerAsync(
        HttpContext context, MockApnsRequest recorded, Dictionary<string, string> headers, MockProviderToken? jwt, string? token)
    {
        var apnsId = headers.GetValueOrDefault("apns-id") is { } id && Guid.TryParseExact(id, "D", out _) ? id : Guid.NewGuid().ToString("D");
        var (status, reason) = Check(recorded, jwt);
        DateTimeOffset? timestamp = null;
        if (status == 200 && !await SitOutStallAsync(context, recorded))
        {
            return;
        }

        if (status == 200)
        {
            var action = TakeScripted(token!);
            switch (action?.Kind)
            {
                case ActionKind.Respond:
                    (status, reason, timestamp) = (action.Status, action.Reason, action.Timestamp);
                    break;
                case ActionKind.Stall:
                    Interlocked.Increment(ref _stalled);
                    try
                    {
                        Task release;
                        lock (_lock)
                        {
                            release = _release.Task;
                        }

                        await release.WaitAsync(context.RequestAborted);
                    }
                    catch (OperationCanceledException)
                    {
                        recorded.Reason = "ClientGaveUp";
                        Interlocked.Increment(ref _abandoned);
                        return;
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _stalled);
                    }

                    break;
                case ActionKind.Reset:
                    recorded.Reason = "StreamReset";
                    context.Abort();
                    return;
                case ActionKind.Drop:
                    recorded.Reason = "ConnectionDropped";
                    if (_connections.TryGetValue(context.Connection.Id, out var connection))
                    {
                        connection.Abort(new ConnectionAbortedException("Dropped by the mock."));
                    }
                    else
                    {
                        context.Abort();
                    }

                    return;
                default:
                    if (_options.UnregisteredShare > 0 && Random.Shared.NextDouble() < _options.UnregisteredShare)
                    {
                        (status, reason, timestamp) = (410, "Unregistered", _options.TimeProvider.GetUtcNow());
                    }

                    break;
            }
        }

        var latency = Latency;
        if (latency > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(latency, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        recorded.Status = status;
        recorded.Reason = reason;
        var response = context.Response;
        response.StatusCode = status;
        response.Headers["apns-id"] = apnsId;
        if (status != 200)
        {
            response.ContentType = "application/json";
            await response.Body.WriteAsync(ErrorBody(reason, timestamp), context.RequestAborted);
        }

        try
        {
            await response.CompleteAsync();
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ConnectionAbortedException)
        {
            // Reset meanwhile: the check below records it.
        }

        if (context.RequestAborted.IsCancellationRequested)
        {
            // The client reset the stream (its deadline passed) while the answer was being written: it never read
            // it and will send the push again, so this one does not count as answered.
            recorded.Status = 0;
            recorded.Reason = "ClientGaveUp";
            Interlocked.Increment(ref _abandoned);
        }
        else if (status == 200 && !FirstDelivery(Guid.ParseExact(apnsId, "D")))
        {
            Interlocked.Increment(ref _duplicates);
        }
    }

    private bool FirstDelivery(Guid apnsId)
    {
        var stripe = _delivered[(apnsId.GetHashCode() & int.MaxValue) % _delivered.Length];
        lock (stripe)
        {
            return stripe.Add(apnsId);
        }
    }

    // False when the request arrived during a StallFor window: it is held until the client gives up, never answered.
    private async Task<bool> SitOutStallAsync(HttpContext context, MockApnsRequest recorded)
    {
        if (!IsSilent)
        {
            return true;
        }

        Interlocked.Increment(ref _stalled);
        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, _options.TimeProvider, context.RequestAborted);
            return false;
        }
        catch (OperationCanceledException)
        {
            recorded.Reason = "ClientGaveUp";
            Interlocked.Increment(ref _abandoned);
            return false;
        }
        finally
        {
            Interlocked.Decrement(ref _stalled);
        }
    }

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, ct);
        return buffer.ToArray();
    }

    private static byte[] ErrorBody(string? reason, DateTimeOffset? timestamp)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writer.WriteString("reason", reason);
            if (timestamp is { } at)
            {
                writer.WriteNumber("timestamp", at.ToUnixTimeMilliseconds());
            }

            writer.WriteEndObject();
        }

        return stream.ToArray();
    }

    // Apple's checks, in roughly Apple's order; the first failure wins.
    private (int Status, string? Reason) Check(MockApnsRequest request, MockProviderToken? jwt)
    {
        if (request.Method != HttpMethods.Post)
        {
            return (405, "MethodNotAllowed");
        }

        if (request.DeviceToken is null)
        {
            return (404, "BadPath");
        }

        if (request.DeviceToken.Length == 0)
        {
            return (400, "MissingDeviceToken");
        }

        if (request.DeviceToken.Length < 64 || !request.DeviceToken.All(char.IsAsciiHexDigit))
        {
            return (400, "BadDeviceToken");
        }

        var auth = CheckAuthentication(request, jwt);
        if (auth.Status != 200)
        {
            return auth;
        }

        if (request.Header("apns-id") is { } id && !Guid.TryParseExact(id, "D", out _))
        {
            return (400, "BadMessageId");
        }

        var topic = request.Header("apns-topic");
        if (string.IsNullOrEmpty(topic))
        {
            return (400, "MissingTopic");
        }

        if (topic.Any(char.IsWhiteSpace))
        {
            return (400, "BadTopic");
        }

        if (_options.Topic is not null && topic != _options.Topic)
        {
            return (400, "DeviceTokenNotForTopic");
        }

        var pushType = request.Header("apns-push-type");
        if (pushType is not null && !PushTypes.Contains(pushType))
        {
            return (400, "InvalidPushType");
        }

        if (request.Header("apns-priority") is { } priority && priority is not ("10" or "5" or "1"))
        {
            return (400, "BadPriority");
        }

        if (request.Header("apns-expiration") is { } expiration && !long.TryParse(expiration, NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            return (400, "BadExpirationDate");
        }

        if (request.Header("apns-collapse-id") is { } collapseId && System.Text.Encoding.UTF8.GetByteCount(collapseId) > 64)
        {
            return (400, "BadCollapseId");
        }

        if (request.Payload.Length == 0)
        {
            return (400, "PayloadEmpty");
        }

        if (request.Payload.Length > (pushType == "voip" ? 5120 : 4096))
        {
            return (413, "PayloadTooLarge");
        }

        return (200, null);
    }

    private (int Status, string? Reason) CheckAuthentication(MockApnsRequest request, MockProviderToken? jwt)
    {
        if (_options.RequireClientCertificate && jwt is null)
        {
            return request.ClientCertificateThumbprint is null ? (403, "MissingProviderToken") : (200, null);
        }

        if (jwt is null)
        {
            return (403, "MissingProviderToken");
        }

        if (jwt.Algorithm != "ES256" || jwt.KeyId is null || jwt.Issuer is null || jwt.IssuedAt is null || jwt.SignatureValid == false
            || (_options.KeyId is not null && jwt.KeyId != _options.KeyId)
            || (_options.TeamId is not null && jwt.Issuer != _options.TeamId))
        {
            return (403, "InvalidProviderToken");
        }

        var now = _options.TimeProvider.GetUtcNow();
        if (now - DateTimeOffset.FromUnixTimeSeconds(jwt.IssuedAt.Value) > TimeSpan.FromHours(1))
        {
            return (403, "ExpiredProviderToken");
        }

        lock (_lock)
        {
            if (_tokensByKeyId.TryGetValue(jwt.KeyId, out var last) && last.Token != jwt.Raw)
            {
                if (_options.EnforceTokenUpdateInterval && now - last.ChangedAt < TimeSpan.FromMinutes(20))
                {
                    return (429, "TooManyProviderTokenUpdates");
                }

                _tokenChanges++;
                _tokensByKeyId[jwt.KeyId] = (jwt.Raw, now);
            }
            else if (!_tokensByKeyId.ContainsKey(jwt.KeyId))
            {
                _tokensByKeyId[jwt.KeyId] = (jwt.Raw, now);
            }
        }

        return (200, null);
    }

    private enum ActionKind
    {
        Respond,
        Stall,
        Reset,
        Drop,
    }

    private sealed class ScriptedAction(ActionKind kind, int remaining, int status, string? reason, DateTimeOffset? timestamp)
    {
        public ActionKind Kind { get; } = kind;

        public int Remaining { get; set; } = remaining;

        public int Status { get; } = status;

        public string? Reason { get; } = reason;

        public DateTimeOffset? Timestamp { get; } = timestamp;
    }
}
