using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Monal.Push.Ledger.Crypto;

/// <summary>
/// The master key: wraps the per-device data keys and derives the server's keyed-hash keys. It comes from
/// <c>Ledger:MasterKey</c> (base64) or from a key file created on first start (mode 0600), and never enters the
/// database, so a database backup alone cannot unwrap a data key.
/// </summary>
public sealed class MasterKey
{
    private readonly byte[] _key;

    /// <summary>Loads or creates the master key as configured.</summary>
    public MasterKey(IOptions<LedgerOptions> options, IOptions<DataOptions> data)
    {
        var o = options.Value;
        if (!string.IsNullOrWhiteSpace(o.MasterKey))
        {
            _key = Convert.FromBase64String(o.MasterKey.Trim());
        }
        else
        {
            var file = o.MasterKeyFile ?? Path.Combine(data.Value.Path, "master.key");
            _key = LoadOrCreate(Path.GetFullPath(file));
        }

        if (_key.Length != 32)
        {
            throw new InvalidOperationException("The master key must be 32 bytes (base64 of 32 random bytes).");
        }
    }

    /// <summary>For tests and tools: a given key.</summary>
    public MasterKey(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        _key = key.Length == 32 ? key : throw new ArgumentException("The master key must be 32 bytes.", nameof(key));
    }

    /// <summary>A key derived for one purpose (HKDF-SHA256), so no two uses share key material.</summary>
    public byte[] Derive(string purpose) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, _key, 32, salt: [], info: Encoding.UTF8.GetBytes("monal-push/" + purpose));

    internal byte[] Wrap(Guid deviceId, byte[] dataKey) => Aead.Seal(_key, dataKey, deviceId);

    internal byte[] Unwrap(Guid deviceId, byte[] wrapped) => Aead.Open(_key, wrapped, deviceId);

    private static byte[] LoadOrCreate(string file)
    {
        if (File.Exists(file))
        {
            return Convert.FromBase64String(File.ReadAllText(file).Trim());
        }

        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var key = RandomNumberGenerator.GetBytes(32);
        var tmp = file + ".tmp";
        using (var stream = new FileStream(tmp, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(Convert.ToBase64String(key));
        }

        try
        {
            // Two processes starting together: the first rename wins and both read the winner's key.
            File.Move(tmp, file, overwrite: false);
        }
        catch (IOException)
        {
            File.Delete(tmp);
        }

        return Convert.FromBase64String(File.ReadAllText(file).Trim());
    }
}

/// <summary>AES-256-GCM with the device id as associated data: nonce (12) | ciphertext | tag (16).</summary>
internal static class Aead
{
    public static byte[] Seal(byte[] key, ReadOnlySpan<byte> plaintext, Guid context)
    {
        var output = new byte[12 + plaintext.Length + 16];
        var nonce = output.AsSpan(0, 12);
        RandomNumberGenerator.Fill(nonce);
        Span<byte> aad = stackalloc byte[16];
        context.TryWriteBytes(aad);
        using var gcm = new AesGcm(key, 16);
        gcm.Encrypt(nonce, plaintext, output.AsSpan(12, plaintext.Length), output.AsSpan(12 + plaintext.Length), aad);
        return output;
    }

    public static byte[] Open(byte[] key, ReadOnlySpan<byte> sealedData, Guid context)
    {
        if (sealedData.Length < 28)
        {
            throw new CryptographicException("Ciphertext too short.");
        }

        var plaintext = new byte[sealedData.Length - 28];
        Span<byte> aad = stackalloc byte[16];
        context.TryWriteBytes(aad);
        using var gcm = new AesGcm(key, 16);
        gcm.Decrypt(sealedData[..12], sealedData[12..^16], sealedData[^16..], plaintext, aad);
        return plaintext;
    }
}
