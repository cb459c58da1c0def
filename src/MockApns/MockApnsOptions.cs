using System.Security.Cryptography.X509Certificates;

namespace Monal.Push.MockApns;

/// <summary>
/// How the mock behaves. Defaults: TLS with a fresh self-signed certificate, any topic, a JWT required but only
/// structurally checked unless ProviderPublicKeyPem is given.
/// </summary>
public sealed class MockApnsOptions
{
    // 0 picks a free loopback port.
    public int Port { get; init; }

    // false: HTTP/2 without TLS (h2c, prior knowledge).
    public bool UseTls { get; init; } = true;

    // The topic the tokens belong to; another topic gets DeviceTokenNotForTopic. null accepts any topic.
    public string? Topic { get; init; }

    // The provider key's public half (SubjectPublicKeyInfo PEM) to verify the JWT's ES256 signature with.
    public string? ProviderPublicKeyPem { get; init; }

    public string? KeyId { get; init; }

    public string? TeamId { get; init; }

    // Certificate authentication: the TLS handshake asks for a client certificate and no JWT is needed.
    public bool RequireClientCertificate { get; init; }

    public Func<X509Certificate2, bool>? ClientCertificateValidator { get; init; }

    // Answer 429 TooManyProviderTokenUpdates when a key's token changes within 20 minutes, as Apple does.
    public bool EnforceTokenUpdateInterval { get; init; }

    // Kestrel's SETTINGS_MAX_CONCURRENT_STREAMS (Kestrel's default is 100).
    public int MaxStreamsPerConnection { get; init; } = 100;

    public TimeSpan Latency { get; init; }

    // This share of valid requests (0..1) gets 410 Unregistered with the current time, for load tests.
    public double UnregisteredShare { get; init; }

    // Keep every request for Requests; load runs turn this off so memory stays flat.
    public bool RecordRequests { get; init; } = true;

    // The clock for JWT age checks and 410 timestamps.
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
