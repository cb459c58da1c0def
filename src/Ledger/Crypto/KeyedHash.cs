using System.Security.Cryptography;
using System.Text;

namespace Monal.Push.Ledger.Crypto;

/// <summary>
/// Keyed, non-reversible identifiers: the device UUID of a stateless node (derived from push module and token),
/// the secret hash, and the short hashes that logs use instead of tokens, nodes and JIDs.
/// </summary>
public sealed class KeyedHash
{
    private readonly byte[] _deviceKey;
    private readonly byte[] _logKey;
    private readonly byte[] _secretKey;

    /// <summary>Derives the keys from the master key.</summary>
    public KeyedHash(MasterKey master)
    {
        ArgumentNullException.ThrowIfNull(master);
        _deviceKey = master.Derive("stateless-device-id");
        _logKey = master.Derive("log-redaction");
        _secretKey = master.Derive("secret-hash");
    }

    /// <summary>
    /// The device UUID of a stateless node: HMAC-SHA256(push module, token) shaped as an RFC 9562 version-8 UUID.
    /// Not reversible without the server key, stable for the same module and token.
    /// </summary>
    public Guid StatelessDeviceId(string pushModule, string token)
    {
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_deviceKey, Encoding.UTF8.GetBytes(pushModule + "\n" + token), mac);
        mac[6] = (byte)((mac[6] & 0x0F) | 0x80); // version 8
        mac[8] = (byte)((mac[8] & 0x3F) | 0x80); // RFC 9562 variant
        return new Guid(mac[..16], bigEndian: true);
    }

    /// <summary>A short keyed hash for logs: "d:1a2b3c4d5e". Never log the value itself.</summary>
    public string Redact(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_logKey, Encoding.UTF8.GetBytes(value), mac);
        return "h:" + Convert.ToHexStringLower(mac[..5]);
    }

    /// <summary>A short keyed hash of a device id for logs.</summary>
    public string Redact(Guid deviceId) => Redact(deviceId.ToString("N"));

    /// <summary>The stored form of a registration secret (keyed HMAC, compared in constant time).</summary>
    public string HashSecret(string secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        return Convert.ToBase64String(HMACSHA256.HashData(_secretKey, Encoding.UTF8.GetBytes(secret)));
    }

    /// <summary>Checks a secret against its stored hash in constant time.</summary>
    public bool SecretMatches(string secret, string storedHash)
    {
        ArgumentNullException.ThrowIfNull(secret);
        ArgumentNullException.ThrowIfNull(storedHash);
        Span<byte> expected = stackalloc byte[32];
        if (!Convert.TryFromBase64String(storedHash, expected, out var written) || written != 32)
        {
            return false;
        }

        Span<byte> actual = stackalloc byte[32];
        HMACSHA256.HashData(_secretKey, Encoding.UTF8.GetBytes(secret), actual);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }
}
