using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Monal.Push.Delivery.Apns;

/// <summary>
/// How one connection pool to APNs behaves. Defaults follow Apple's "Sending notification requests to APNs": keep
/// connections open for hours, ping instead of reconnecting, and do not flood a fresh connection.
/// </summary>
internal sealed record ApnsClientOptions
{
    public required Uri Endpoint { get; init; }

    // Token auth (JWT) or certificate auth: exactly one of them.
    public ApnsJwtProvider? JwtProvider { get; init; }

    public X509Certificate2? ClientCertificate { get; init; }

    // Requests in flight on this pool. About 100 already reach the ceiling of one HTTP/2 connection (docs/benchmarks.md).
    public int MaxConcurrentRequests { get; init; } = 100;

    // From sending the request to reading the whole answer; waiting for a slot under MaxConcurrentRequests is not counted.
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    // HTTP/2 PING on a quiet connection, so that NATs and Apple keep it and a dead one is noticed before a push needs it.
    public TimeSpan KeepAlivePingDelay { get; init; } = TimeSpan.FromMinutes(1);

    public TimeSpan KeepAlivePingTimeout { get; init; } = TimeSpan.FromSeconds(20);

    // Apple asks to reuse connections for many hours rather than reconnect per burst.
    public TimeSpan PooledConnectionIdleTimeout { get; init; } = TimeSpan.FromHours(2);

    // Turns a device token into something loggable: the registry passes KeyedHash.Redact, a short keyed hash (an
    // unkeyed hash would let anyone holding a token find it in the logs). Without one, no token-derived value is logged.
    public Func<string, string> TokenRedactor { get; init; } = static _ => "(redacted)";

    // Name of the pool in logs (credential and endpoint, never a token).
    public string Name { get; init; } = "apns";

    // Tests trust the mock's self-signed certificate through this.
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; init; }

    // Tests may wrap or replace the handler; the client disposes what this returns.
    public Func<SocketsHttpHandler, HttpMessageHandler>? HandlerFactory { get; init; }
}
