using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Monal.Push.Delivery.Apns;

namespace Monal.Push.Delivery.PushModules;

/// <summary>
/// `PushModules:&lt;name&gt;` in configuration (docs/operators.md): which app (topic), which APNs, which credentials.
/// </summary>
internal sealed class PushModuleOptions
{
    public string? Topic { get; set; }

    public ApnsEnvironment Environment { get; set; } = ApnsEnvironment.Production;

    public string? TeamId { get; set; }

    public string? KeyId { get; set; }

    public string? KeyFile { get; set; }

    public string? CertificateFile { get; set; }

    public string? CertificatePassword { get; set; }

    // Overrides Apple's host: https://... or http://... (h2c with prior knowledge, for local simulators).
    public string? Endpoint { get; set; }

    public PushModuleKind Kind { get; set; } = PushModuleKind.Alert;

    // Apple keeps an undeliverable push this long (apns-expiration = now + TimeToLive); zero means "now or never".
    public TimeSpan TimeToLive { get; set; } = TimeSpan.FromDays(1);

    public string? CollapseId { get; set; }

    public int MaxConcurrentRequests { get; set; } = 100;

    // The deadline of one request to Apple (issue 15): past it the push is retried later with the same apns-id and
    // the pool's connection is replaced. Modules sharing a pool (one key, one endpoint) use the first one's.
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public bool UsesToken => !string.IsNullOrWhiteSpace(KeyFile);

    public bool UsesCertificate => !string.IsNullOrWhiteSpace(CertificateFile);

    public Uri ResolveEndpoint() =>
        !string.IsNullOrWhiteSpace(Endpoint) ? new Uri(Endpoint, UriKind.Absolute)
        : Environment == ApnsEnvironment.Sandbox ? ApnsEndpoints.Sandbox
        : ApnsEndpoints.Production;

    // Every problem at once, each naming its configuration key, so an operator fixes them in one go. Includes
    // CanLoadCredentials: a module whose key cannot be read is not ready.
    public IReadOnlyList<string> Validate(string name)
    {
        var prefix = $"PushModules:{name}";
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(name))
        {
            problems.Add("A push module needs a name (PushModules:<name>:...).");
        }

        if (string.IsNullOrWhiteSpace(Topic))
        {
            problems.Add($"{prefix}:Topic is missing: set it to the app's bundle id (the APNs topic).");
        }
        else if (Topic.Any(char.IsWhiteSpace))
        {
            problems.Add($"{prefix}:Topic '{Topic}' contains white space.");
        }

        if (!Enum.IsDefined(Environment))
        {
            problems.Add($"{prefix}:Environment must be 'production' or 'sandbox'.");
        }

        if (!Enum.IsDefined(Kind))
        {
            problems.Add($"{prefix}:Kind must be 'alert' or 'background'.");
        }

        var credentialsComplete = true;
        if (UsesToken && UsesCertificate)
        {
            problems.Add($"{prefix} has both KeyFile and CertificateFile: use token authentication (TeamId, KeyId, KeyFile) or a certificate, not both.");
            credentialsComplete = false;
        }
        else if (!UsesToken && !UsesCertificate)
        {
            problems.Add($"{prefix} has no credentials: set TeamId, KeyId and KeyFile (a .p8 key) or CertificateFile (a .p12 certificate).");
            credentialsComplete = false;
        }
        else if (UsesToken)
        {
            if (!IsAppleId(TeamId))
            {
                problems.Add($"{prefix}:TeamId is missing or not an Apple team id (letters and digits).");
                credentialsComplete = false;
            }

            if (!IsAppleId(KeyId))
            {
                problems.Add($"{prefix}:KeyId is missing or not an Apple key id (letters and digits).");
                credentialsComplete = false;
            }
        }

        if (credentialsComplete && !CanLoadCredentials(out var credentialProblem))
        {
            problems.Add($"{prefix}: {credentialProblem}");
        }

        if (!string.IsNullOrWhiteSpace(Endpoint)
            && (!Uri.TryCreate(Endpoint, UriKind.Absolute, out var endpoint) || (endpoint.Scheme != Uri.UriSchemeHttps && endpoint.Scheme != Uri.UriSchemeHttp)))
        {
            problems.Add($"{prefix}:Endpoint '{Endpoint}' must be an absolute https:// URL (or http:// for an h2c simulator).");
        }

        if (TimeToLive < TimeSpan.Zero)
        {
            problems.Add($"{prefix}:TimeToLive must not be negative.");
        }

        if (CollapseId is not null && Encoding.UTF8.GetByteCount(CollapseId) > 64)
        {
            problems.Add($"{prefix}:CollapseId may have at most 64 bytes.");
        }

        if (MaxConcurrentRequests < 1)
        {
            problems.Add($"{prefix}:MaxConcurrentRequests must be at least 1.");
        }

        if (RequestTimeout <= TimeSpan.Zero)
        {
            problems.Add($"{prefix}:RequestTimeout must be positive.");
        }

        return problems;
    }

    // For /health and `doctor`: can the key or certificate be loaded right now?
    public bool CanLoadCredentials(out string? problem)
    {
        problem = null;
        try
        {
            if (UsesToken)
            {
                using var key = ApnsJwtProvider.LoadKey(KeyFile!);
                return true;
            }

            if (UsesCertificate)
            {
                using var certificate = LoadCertificate();
                if (!certificate.HasPrivateKey)
                {
                    problem = $"CertificateFile '{CertificateFile}' has no private key.";
                    return false;
                }

                if (certificate.NotAfter < DateTime.Now)
                {
                    problem = $"CertificateFile '{CertificateFile}' expired on {certificate.NotAfter:u}.";
                    return false;
                }

                return true;
            }

            problem = "No KeyFile or CertificateFile is configured.";
            return false;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            problem = UsesToken
                ? $"KeyFile '{KeyFile}' cannot be used as an APNs .p8 key (PKCS#8 EC P-256 PEM): {ex.Message}"
                : $"CertificateFile '{CertificateFile}' cannot be loaded as a PKCS#12 certificate (wrong password?): {ex.Message}";
            return false;
        }
    }

    public X509Certificate2 LoadCertificate() => X509CertificateLoader.LoadPkcs12FromFile(CertificateFile!, CertificatePassword);

    private static bool IsAppleId(string? value) => !string.IsNullOrWhiteSpace(value) && value.All(char.IsAsciiLetterOrDigit);
}
