using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Monal.Push.MockApns;

public sealed partial class MockApnsServer
{
    // Decoded tokens by their whole authorization header. A client sends one token for up to an hour, and verifying
    // its ES256 signature costs about 66 µs of CPU here: once per request it was most of what the mock cost a
    // benchmark's push. The decoding is a function of the header and the mock's key only; what depends on the time
    // (expiry, how often a key's token changes) is still checked at every request.
    private const int DecodedTokensKept = 64;
    private readonly ConcurrentDictionary<string, MockProviderToken> _decodedTokens = new(StringComparer.Ordinal);

    // Decodes "bearer <jwt>"; null when absent. A token that does not even parse still comes back, with nulls.
    private MockProviderToken? DecodeProviderToken(string? authorization)
    {
        if (string.IsNullOrEmpty(authorization))
        {
            return null;
        }

        if (_decodedTokens.TryGetValue(authorization, out var known))
        {
            return known;
        }

        if (_decodedTokens.Count >= DecodedTokensKept)
        {
            _decodedTokens.Clear();
        }

        return _decodedTokens.GetOrAdd(authorization, Decode);
    }

    private MockProviderToken Decode(string authorization)
    {
        const string scheme = "bearer ";
        var raw = authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? authorization[scheme.Length..] : authorization;
        var parts = raw.Split('.');
        if (parts.Length != 3)
        {
            return new MockProviderToken(raw, null, null, null, null, false);
        }

        try
        {
            using var header = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[0]));
            using var claims = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[1]));
            bool? signatureValid = null;
            if (_providerKey is not null)
            {
                var signature = Base64Url.DecodeFromChars(parts[2]);
                // JWS ES256 signatures are IEEE P1363 (r||s), the format ECDsa.VerifyData expects by default.
                signatureValid = _providerKey.VerifyData(Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), signature, HashAlgorithmName.SHA256);
            }

            return new MockProviderToken(
                raw,
                String(header.RootElement, "alg"),
                String(header.RootElement, "kid"),
                String(claims.RootElement, "iss"),
                claims.RootElement.TryGetProperty("iat", out var iat) && iat.ValueKind == JsonValueKind.Number && iat.TryGetInt64(out var seconds) ? seconds : null,
                signatureValid);
        }
        catch (Exception ex) when (ex is JsonException or FormatException or CryptographicException)
        {
            return new MockProviderToken(raw, null, null, null, null, false);
        }
    }

    private static string? String(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;
}
