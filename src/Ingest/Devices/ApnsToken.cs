using System.Buffers;

namespace Monal.Push.Ingest.Devices;

/// <summary>
/// The shape of an APNs device token as apps hand it over: hex. Apple's tokens are 32 bytes today and Apple says
/// they may grow, so anything from 16 to 100 bytes of hex is accepted. Tokens are normalized to lower case, so one
/// device never gets two stateless ids (or two streams) because a server changed the case.
/// </summary>
internal static class ApnsToken
{
    public const int MinHexLength = 32;
    public const int MaxHexLength = 200;

    private static readonly SearchValues<char> Hex = SearchValues.Create("0123456789abcdefABCDEF");

    public static bool TryNormalize(string? candidate, out string token)
    {
        token = string.Empty;
        if (candidate is null || candidate.Length is < MinHexLength or > MaxHexLength || candidate.Length % 2 != 0
            || candidate.AsSpan().ContainsAnyExcept(Hex))
        {
            return false;
        }

        token = candidate.ToLowerInvariant();
        return true;
    }
}
