using System.Security.Cryptography;
using System.Text;

namespace Monal.Push.Delivery.Apns;

// Tokens never go into logs (PRODUCT.md, privacy promises): logs get the first 4 bytes of the token's SHA-256, enough
// to follow one device through a log file and useless for pushing to it.
internal static class DeviceTokenHash
{
    public static string Short(string deviceToken)
    {
        ArgumentNullException.ThrowIfNull(deviceToken);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        var maxBytes = Encoding.UTF8.GetMaxByteCount(deviceToken.Length);
        var buffer = maxBytes <= 512 ? stackalloc byte[maxBytes] : new byte[maxBytes];
        var written = Encoding.UTF8.GetBytes(deviceToken, buffer);
        SHA256.HashData(buffer[..written], hash);
        return Convert.ToHexStringLower(hash[..4]);
    }
}
