using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Monal.Push.Delivery.Apns;

/// <summary>
/// The provider token of Apple's token-based connection ("Establishing a token-based connection to APNs"): a JWT with
/// header {alg: ES256, kid} and claims {iss: team id, iat}, signed with the .p8 key (P-256, SHA-256, IEEE P1363 r||s).
/// Apple refuses tokens older than an hour (403 ExpiredProviderToken) and answers 429 TooManyProviderTokenUpdates when
/// a key's token changes more often than every 20 minutes, so a token lives between MinimumAge and RefreshAfter.
/// The "bearer ..." string is cached: sending a push costs a volatile read and a clock read, no allocation.
/// </summary>
internal sealed class ApnsJwtProvider : IDisposable
{
    public static readonly TimeSpan MinimumAge = TimeSpan.FromMinutes(20);
    public static readonly TimeSpan MaximumAge = TimeSpan.FromMinutes(60);
    public static readonly TimeSpan DefaultRefreshAfter = TimeSpan.FromMinutes(45);

    private readonly ECDsa _key;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _refreshAfter;
    private readonly Lock _refreshLock = new();
    private volatile IssuedToken? _current;

    public ApnsJwtProvider(string teamId, string keyId, ECDsa key, TimeProvider time, ILogger logger, TimeSpan? refreshAfter = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(teamId);
        ArgumentException.ThrowIfNullOrWhiteSpace(keyId);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        if (key.KeySize != 256)
        {
            throw new ArgumentException("An APNs key must be an EC P-256 key.", nameof(key));
        }

        var after = refreshAfter ?? DefaultRefreshAfter;
        if (after < MinimumAge || after >= MaximumAge)
        {
            throw new ArgumentOutOfRangeException(nameof(refreshAfter), after, "Apple wants a token refreshed after 20 and before 60 minutes.");
        }

        TeamId = teamId;
        KeyId = keyId;
        _key = key;
        _time = time;
        _logger = logger;
        _refreshAfter = after;
    }

    public string TeamId { get; }

    public string KeyId { get; }

    // Reads a .p8 file (PKCS#8 PEM, "-----BEGIN PRIVATE KEY-----") as Apple hands it out.
    public static ApnsJwtProvider FromKeyFile(
        string teamId, string keyId, string keyFile, TimeProvider time, ILogger logger, TimeSpan? refreshAfter = null)
    {
        var key = LoadKey(keyFile);
        try
        {
            return new ApnsJwtProvider(teamId, keyId, key, time, logger, refreshAfter);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    public static ECDsa LoadKey(string keyFile)
    {
        var pem = File.ReadAllText(keyFile);
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            if (key.KeySize != 256)
            {
                throw new CryptographicException($"The key in {keyFile} is not an EC P-256 key.");
            }

            // A public key imports fine but cannot sign; find out now rather than at the first push.
            key.SignData([0], HashAlgorithmName.SHA256);
            return key;
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    // The value of the `authorization` header: "bearer <jwt>".
    public string GetAuthorizationHeader()
    {
        var current = _current;
        var now = _time.GetUtcNow();
        if (current is not null && now - current.IssuedAt < _refreshAfter)
        {
            return current.Header;
        }

        lock (_refreshLock)
        {
            current = _current;
            if (current is null || _time.GetUtcNow() - current.IssuedAt >= _refreshAfter)
            {
                current = Issue(_time.GetUtcNow());
            }

            return current.Header;
        }
    }

    // The JWT alone, for tests and diagnostics.
    public string GetToken() => GetAuthorizationHeader()["bearer ".Length..];

    // Apple answered 403 ExpiredProviderToken to a request that carried `usedHeader`. Refresh, but never sooner than
    // 20 minutes after the last token: Apple would answer TooManyProviderTokenUpdates, and a 403 for a token younger
    // than that means the clocks disagree, which a new token does not fix. Returns whether the token changed.
    public bool OnExpiredProviderToken(string usedHeader)
    {
        lock (_refreshLock)
        {
            var current = _current;
            if (current is null || !string.Equals(current.Header, usedHeader, StringComparison.Ordinal))
            {
                // Another request already replaced it.
                return current is not null;
            }

            var age = _time.GetUtcNow() - current.IssuedAt;
            if (age < MinimumAge)
            {
                Log.ProviderTokenRefreshDeferred(_logger, KeyId, age);
                return false;
            }

            Issue(_time.GetUtcNow());
            return true;
        }
    }

    public void Dispose() => _key.Dispose();

    private IssuedToken Issue(DateTimeOffset now)
    {
        // Whole seconds: Apple compares `iat` with its clock in seconds.
        var issuedAt = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds());
        var jwt = CreateJwt(issuedAt);
        var token = new IssuedToken("bearer " + jwt, issuedAt);
        _current = token;
        Log.ProviderTokenIssued(_logger, KeyId, issuedAt);
        return token;
    }

    private string CreateJwt(DateTimeOffset issuedAt)
    {
        var header = JsonPart(w =>
        {
            w.WriteString("alg", "ES256");
            w.WriteString("kid", KeyId);
        });
        var claims = JsonPart(w =>
        {
            w.WriteString("iss", TeamId);
            w.WriteNumber("iat", issuedAt.ToUnixTimeSeconds());
        });
        var signingInput = header + "." + claims;
        // ECDsa.SignData writes IEEE P1363 (r||s, 64 bytes for P-256), which is what JWS ES256 wants (RFC 7518 3.4).
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return signingInput + "." + Base64Url.EncodeToString(signature);
    }

    private static string JsonPart(Action<Utf8JsonWriter> write)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }

        return Base64Url.EncodeToString(buffer.WrittenSpan);
    }

    private sealed record IssuedToken(string Header, DateTimeOffset IssuedAt);
}
