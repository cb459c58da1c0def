using System.Net;
using Microsoft.Extensions.Options;

namespace Monal.Push.Cli.Hosting;

/// <summary>
/// The HTTP listener's edge (configuration section <c>Http</c>; docs/operators.md "Behind a reverse proxy"): which
/// peers may tell us the client's address in <c>X-Forwarded-For</c>, and Kestrel's request limits (issue 18).
/// </summary>
internal sealed class HttpEdgeOptions
{
    public const string Section = "Http";

    /// <summary>
    /// Addresses (<c>10.0.0.5</c>) or networks (<c>10.0.0.0/8</c>) of reverse proxies whose <c>X-Forwarded-For</c> is
    /// believed. Empty: only a proxy on this host (loopback) is, ASP.NET Core's default.
    /// </summary>
    public string[] KnownProxies { get; set; } = [];

    /// <summary>Largest request body Kestrel accepts (a v1 registration is far below 4 KB).</summary>
    public long MaxRequestBodyBytes { get; set; } = 64 * 1024;

    /// <summary>How long a client may take to send its request headers.</summary>
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Problems, each naming its key.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        foreach (var proxy in KnownProxies)
        {
            if (!IPAddress.TryParse(proxy, out _) && !System.Net.IPNetwork.TryParse(proxy, out _))
            {
                problems.Add($"Http:KnownProxies: '{proxy}' is neither an IP address nor a network such as 10.0.0.0/8.");
            }
        }

        if (MaxRequestBodyBytes < 4096)
        {
            problems.Add("Http:MaxRequestBodyBytes must be at least 4096.");
        }

        if (RequestHeadersTimeout <= TimeSpan.Zero)
        {
            problems.Add("Http:RequestHeadersTimeout must be positive.");
        }

        return problems;
    }

    /// <summary>Refuses unusable <c>Http</c> options at start, each problem naming its key.</summary>
    internal sealed class Validator : IValidateOptions<HttpEdgeOptions>
    {
        public ValidateOptionsResult Validate(string? name, HttpEdgeOptions options)
        {
            ArgumentNullException.ThrowIfNull(options);
            var problems = options.Problems();
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}
