using System.Security.Cryptography;
using System.Text;

namespace Monal.Push.Demo.Showing;

/// <summary>
/// A pretend iPhone running an older Monal: the device UUID it registers as its node and a random APNs token.
/// The token is never printed: the demo shows its short keyed hash, the form serve's logs use.
/// </summary>
public sealed record DemoDevice(Guid Node, string Token)
{
    public static DemoDevice Create() => new(Guid.NewGuid(), Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)));

    /// <summary>
    /// Registers the way Monal before 5.2 does (mod_push_appserver's v1 API, which serve implements):
    /// <c>POST /v1/register</c> with type=apns, node and token; the answer is <c>OK\n&lt;node&gt;\n&lt;secret&gt;</c>.
    /// </summary>
    /// <returns>The secret the XMPP server must send in the publish-options.</returns>
    public async Task<string> RegisterAsync(HttpClient http, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(http);
        using var content = new FormUrlEncodedContent([new("type", "apns"), new("node", Node.ToString()), new("token", Token)]);
        using var response = await http.PostAsync(new Uri("/v1/register", UriKind.Relative), content, cancellationToken);
        var lines = (await response.Content.ReadAsStringAsync(cancellationToken)).Split('\n');
        if (!response.IsSuccessStatusCode || lines.Length < 3 || lines[0] != "OK")
        {
            throw new InvalidOperationException($"The registration was refused ({(int)response.StatusCode}): {string.Join(' ', lines).Trim()}");
        }

        return lines[2];
    }
}
