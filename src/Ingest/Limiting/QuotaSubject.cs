using System.Net;
using System.Net.Sockets;
using Monal.Push.Ledger.Crypto;

namespace Monal.Push.Ingest.Limiting;

/// <summary>
/// Who creates a new device, as the quota keys it: an XMPP domain (not personal data), or an HTTP client's network
/// as a short keyed hash (an address is personal data: it is never stored or logged). <see cref="Key"/> is what
/// new_device_quota stores (migrations/0009_new_device_quota.sql).
/// </summary>
internal readonly record struct QuotaSubject(string Key, bool IsHttpClient)
{
    public static QuotaSubject Domain(string domain) => new("xmpp:" + domain.ToLowerInvariant(), false);

    public static QuotaSubject Client(IPAddress? address, KeyedHash hash)
    {
        ArgumentNullException.ThrowIfNull(hash);
        return new("http:" + hash.Redact("client-network:" + ClientNetwork(address)), true);
    }

    /// <summary>
    /// The network one client is assumed to control: an IPv4 address, or an IPv6 /64 (the smallest prefix a
    /// subscriber is given, RFC 6177), so that one host cannot escape its limit by walking its own /64.
    /// </summary>
    public static string ClientNetwork(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }

        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }

    /// <summary>Redacted: an HTTP subject's key is already a hash; a domain may be shown.</summary>
    public override string ToString() => Key;
}
