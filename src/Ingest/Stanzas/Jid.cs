using System.Buffers;

namespace Monal.Push.Ingest.Stanzas;

/// <summary>Only the domain part of a JID ever leaves the parser (privacy policy: no user JID is stored or logged).</summary>
internal static class Jid
{
    private static readonly SearchValues<char> Forbidden = SearchValues.Create(" <>'\"&@");

    /// <summary>The domain part of <c>local@domain/resource</c> (RFC 7622 section 3.2), lowercased; null if empty.</summary>
    public static string? DomainOf(string? jid)
    {
        if (string.IsNullOrEmpty(jid))
        {
            return null;
        }

        var span = jid.AsSpan();
        var slash = span.IndexOf('/');
        if (slash >= 0)
        {
            span = span[..slash];
        }

        var at = span.IndexOf('@');
        if (at >= 0)
        {
            span = span[(at + 1)..];
        }

        span = span.TrimEnd('.');
        return span.IsEmpty || span.ContainsAny(Forbidden) ? null : span.ToString().ToLowerInvariant();
    }
}
