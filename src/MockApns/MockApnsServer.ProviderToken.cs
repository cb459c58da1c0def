using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Monal.Push.MockApns;

public sealed partial class MockApnsServer
{
    // Decodes "bearer <jwt>"; null when absent. A token that does not even parse still comes back, with nulls.
    private MockProviderToken? DecodeProviderToken(string? authorization)
    {
        if (string.IsNullOrEmpty(authorization))
        {
            return null;
        }

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
