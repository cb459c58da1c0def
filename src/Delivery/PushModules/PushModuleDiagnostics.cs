using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Delivery.Apns;

namespace Monal.Push.Delivery.PushModules;

/// <summary>One push module's readiness, as `monal-push doctor` and `/health/ready` report it.</summary>
public sealed record PushModuleCheck(string Module, string Endpoint, IReadOnlyList<string> Problems)
{
    /// <summary>True when the module can send.</summary>
    public bool Ready => Problems.Count == 0;
}

/// <summary>
/// Checks every configured push module without calling Apple: configuration complete, key or certificate loads,
/// and for token auth a JWT actually signs with the key.
/// </summary>
public static class PushModuleDiagnostics
{
    /// <summary>Checks each <c>PushModules:&lt;name&gt;</c> section.</summary>
    public static IReadOnlyList<PushModuleCheck> Check(IConfiguration configuration, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var checks = new List<PushModuleCheck>();
        foreach (var section in configuration.GetSection("PushModules").GetChildren())
        {
            var options = new PushModuleOptions();
            section.Bind(options);
            var problems = new List<string>(options.Validate(section.Key));
            if (problems.Count == 0 && options.UsesToken)
            {
                try
                {
                    using var jwt = ApnsJwtProvider.FromKeyFile(options.TeamId!, options.KeyId!, options.KeyFile!, clock, NullLogger.Instance);
                    if (jwt.GetToken().Split('.').Length != 3)
                    {
                        problems.Add($"PushModules:{section.Key}:KeyFile did not produce a signed JWT.");
                    }
                }
                catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or IOException or ArgumentException)
                {
                    problems.Add($"PushModules:{section.Key}:KeyFile cannot sign a JWT: {ex.Message}");
                }
            }

            string endpoint;
            try
            {
                endpoint = options.ResolveEndpoint().ToString();
            }
            catch (UriFormatException)
            {
                endpoint = options.Endpoint ?? "?";
            }

            checks.Add(new PushModuleCheck(section.Key, endpoint, problems));
        }

        return checks;
    }
}
