using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Monal.Push.MockApns;

public static class MockApnsCertificates
{
    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";

    // A self-signed server certificate for localhost and 127.0.0.1, made fresh at every start.
    public static X509Certificate2 CreateServerCertificate() =>
        Create("CN=localhost", ServerAuthentication, san =>
        {
            san.AddDnsName("localhost");
            san.AddIpAddress(IPAddress.Loopback);
        });

    // A client certificate like the .p12 Apple hands out for certificate authentication, as PKCS#12 bytes.
    public static byte[] CreateClientPkcs12(string subject, string? password)
    {
        using var certificate = Create(subject, ClientAuthentication, configureNames: null);
        return certificate.Export(X509ContentType.Pkcs12, password);
    }

    private static X509Certificate2 Create(string subject, string usage, Action<SubjectAlternativeNameBuilder>? configureNames)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], critical: false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: false));
        if (configureNames is not null)
        {
            var names = new SubjectAlternativeNameBuilder();
            configureNames(names);
            request.CertificateExtensions.Add(names.Build());
        }

        var now = DateTimeOffset.UtcNow;
        using var ephemeral = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        // Round-trip through PKCS#12 so the private key is usable by SslStream on every platform.
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), password: null);
    }
}
