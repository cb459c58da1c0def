using System.Security.Cryptography;

namespace Monal.Push.Tests.Delivery;

// A fresh APNs-style .p8 key (PKCS#8 PEM, EC P-256) in its own temp folder, deleted on Dispose.
public sealed class ProviderKeyFile : IDisposable
{
    public ProviderKeyFile(string teamId = "TEAM123456", string keyId = "KEY1234567")
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("monal-apns-").FullName;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Path = System.IO.Path.Combine(Directory, $"AuthKey_{keyId}.p8");
        File.WriteAllText(Path, key.ExportPkcs8PrivateKeyPem());
        PublicKeyPem = key.ExportSubjectPublicKeyInfoPem();
        PublicKeyPath = System.IO.Path.Combine(Directory, "public.pem");
        File.WriteAllText(PublicKeyPath, PublicKeyPem);
        TeamId = teamId;
        KeyId = keyId;
    }

    public string Directory { get; }

    public string Path { get; }

    public string PublicKeyPath { get; }

    public string PublicKeyPem { get; }

    public string TeamId { get; }

    public string KeyId { get; }

    // Any other file in the same folder, removed with it.
    public string WriteFile(string name, string content)
    {
        var path = System.IO.Path.Combine(Directory, name);
        File.WriteAllText(path, content);
        return path;
    }

    public string WriteFile(string name, byte[] content)
    {
        var path = System.IO.Path.Combine(Directory, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}
