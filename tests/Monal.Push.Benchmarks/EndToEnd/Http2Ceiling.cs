using System.Buffers.Text;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Monal.Push.Benchmarks.EndToEnd;

/// <summary>
/// The HTTP/2 request ceiling to the mock APNs: one HttpClient connection, 100 requests in flight, each a valid APNs
/// push (ES256 provider token, topic, 64-hex device token), Version 2.0 with RequestVersionExact (docs/benchmarks.md).
/// </summary>
internal static class Http2Ceiling
{
    public static async Task<double> MeasureAsync(
        Uri endpoint, ECDsa key, string keyId, string teamId, string topic, TimeSpan duration, CancellationToken ct)
    {
        using var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = false,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            MaxConnectionsPerServer = 1,
        };
        using var http = new HttpClient(handler) { BaseAddress = endpoint, Timeout = TimeSpan.FromSeconds(30) };
        var authorization = "bearer " + Jwt(key, keyId, teamId);
        var payload = "{\"aps\":{\"alert\":{\"title\":\"New Message\"},\"sound\":\"default\",\"mutable-content\":1}}"u8.ToArray();
        long done = 0;
        long failed = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stop.CancelAfter(duration);
        var sw = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, 100).Select(async w =>
        {
            var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
            while (!stop.IsCancellationRequested)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "3/device/" + token)
                {
                    Version = HttpVersion.Version20,
                    VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                    Content = new ByteArrayContent(payload),
                };
                request.Headers.TryAddWithoutValidation("authorization", authorization);
                request.Headers.TryAddWithoutValidation("apns-topic", topic);
                request.Headers.TryAddWithoutValidation("apns-push-type", "alert");
                request.Headers.TryAddWithoutValidation("apns-priority", "10");
                try
                {
                    using var response = await http.SendAsync(request, stop.Token);
                    await response.Content.LoadIntoBufferAsync(stop.Token);
                    // 200, or the mock's share of 410 Unregistered: both are complete round trips.
                    if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Gone)
                    {
                        Interlocked.Increment(ref done);
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    break;
                }
            }
        }).ToArray();
        await Task.WhenAll(workers);
        if (Interlocked.Read(ref failed) > Interlocked.Read(ref done) / 100)
        {
            throw new InvalidOperationException($"The HTTP/2 ceiling run had {failed} refused requests of {done + failed}.");
        }

        return done / sw.Elapsed.TotalSeconds;
    }

    /// <summary>An APNs provider token: ES256 over header {alg, kid} and claims {iss, iat}, signature r||s.</summary>
    internal static string Jwt(ECDsa key, string keyId, string teamId)
    {
        var header = Base64Url.EncodeToString(Encoding.UTF8.GetBytes($$"""{"alg":"ES256","kid":"{{keyId}}"}"""));
        var claims = Base64Url.EncodeToString(Encoding.UTF8.GetBytes($$"""{"iss":"{{teamId}}","iat":{{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}}}"""));
        var signature = key.SignData(Encoding.ASCII.GetBytes(header + "." + claims), HashAlgorithmName.SHA256);
        return header + "." + claims + "." + Base64Url.EncodeToString(signature);
    }
}
