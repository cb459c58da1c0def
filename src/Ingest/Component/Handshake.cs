using System.Security;
using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using Monal.Push.Ingest.Xml;

namespace Monal.Push.Ingest.Component;

/// <summary>XEP-0114 section 3: the component proves it knows the shared secret.</summary>
internal static class Handshake
{
    public static readonly XName Name = XName.Get("handshake", StreamHeader.ComponentNamespace);

    /// <summary>Lowercase hex SHA-1 of the server's stream id followed by the secret (XEP-0114 section 3, step 3).</summary>
#pragma warning disable CA5350 // XEP-0114 mandates SHA-1 for the handshake; it is not our choice of algorithm.
    public static string Digest(string streamId, string secret) =>
        Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(streamId + secret)));
#pragma warning restore CA5350

    public static string Build(string streamId, string secret) =>
        "<handshake>" + SecurityElement.Escape(Digest(streamId, secret)) + "</handshake>";
}
