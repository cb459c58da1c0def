using System.Net;

namespace Monal.Push.Load.Registering;

/// <summary>The generator talks to loopback only: it is a load tool, and it must never load someone else's server.</summary>
internal static class Loopback
{
    public static void Require(Uri address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var host = address.Host;
        var ok = host == "localhost" || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
        if (!ok)
        {
            throw new ArgumentException($"{address} is not a loopback address; the load generator only talks to 127.0.0.1.", nameof(address));
        }
    }
}
