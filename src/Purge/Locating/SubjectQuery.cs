using System.Buffers;

namespace Monal.Push.Purge.Locating;

/// <summary>Whom a GDPR request is about: a node (`--node N`) or an APNs token (`--token T`).</summary>
public sealed record SubjectQuery
{
    private static readonly SearchValues<char> Hex = SearchValues.Create("0123456789abcdefABCDEF");

    private SubjectQuery(string kind, string value)
    {
        Kind = kind;
        Value = value;
    }

    /// <summary>"node" or "token".</summary>
    public string Kind { get; }

    /// <summary>The node or token as given, trimmed, and in lower case when it is hex. Never logged or stored.</summary>
    public string Value { get; }

    /// <summary>
    /// A node: the device UUID of a registered device, or, for a stateless device, the node is the APNs token itself
    /// (Monal 5.2 and later enable push with node = the token in hex), so a hex node is looked up as a token too.
    /// </summary>
    public static SubjectQuery ByNode(string node)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(node);
        return new("node", Normalize(node));
    }

    /// <summary>An APNs device token (hex).</summary>
    public static SubjectQuery ByToken(string token)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(token);
        return new("token", Normalize(token));
    }

    /// <summary>Whether <see cref="Value"/> has the shape of an APNs token: hex digits only (then in lower case).</summary>
    public bool IsHex => !Value.AsSpan().ContainsAnyExcept(Hex);

    /// <summary>Never prints the value.</summary>
    public override string ToString() => $"SubjectQuery({Kind})";

    // Ingest stores every token in lower case and derives stateless ids from that form (ApnsToken in
    // Monal.Push.Ingest), while a requester or operator may paste it in upper case: a hex value is lower-cased here
    // so it still finds the device. A UUID node keeps its case; Guid parsing ignores case.
    private static string Normalize(string value)
    {
        var trimmed = value.Trim();
        return trimmed.AsSpan().ContainsAnyExcept(Hex) ? trimmed : trimmed.ToLowerInvariant();
    }
}
