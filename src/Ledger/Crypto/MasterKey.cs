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
    private const string CheckLabel = "monal-push master key check v1";
    private readonly byte[] _key;

    /// <summary>Loads or creates the master key as configured.</summary>
    public MasterKey(IOptions<LedgerOptions> options, IOptions<DataOptions> data)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(data);
        var o = options.Value;
        if (!string.IsNullOrWhiteSpace(o.MasterKey))
        {
            Source = "Ledger:MasterKey";
            _key = Parse(o.MasterKey, "Ledger:MasterKey");
        }
        else
        {
            var file = FilePath(o, data.Value);
            Source = "the key file " + file;
            KeyFile = file;
            (_key, CreatedNow) = LoadOrCreate(file);
        }
    }

    /// <summary>For tests and tools: a given key.</summary>
    public MasterKey(byte[] key)
        : this(key, "a key given in code", null)
    {
    }

    private MasterKey(byte[] key, string source, string? file)
    {
        ArgumentNullException.ThrowIfNull(key);
        _key = key.Length == 32 ? key : throw new ArgumentException("The master key must be 32 bytes.", nameof(key));
        Source = source;
        KeyFile = file;
    }

    /// <summary>Where the key came from, for error messages (never the key): the setting or the file's path.</summary>
    public string Source { get; }

    /// <summary>The key file's full path, or null when the key is set in <c>Ledger:MasterKey</c>.</summary>
    public string? KeyFile { get; }

    /// <summary>No key file existed, so this process made a new key (a node joining a database must not).</summary>
    public bool CreatedNow { get; }

    /// <summary>
    /// The key check value stored in <c>master_key_check</c> (issue 19): HMAC-SHA256 of a fixed label under a key
    /// derived from the master key. It proves that two nodes hold the same key without revealing it.
    /// </summary>
    public byte[] CheckValue() => HMACSHA256.HashData(Derive("key-check"), Encoding.UTF8.GetBytes(CheckLabel));

    /// <summary>The key file a configuration names: <c>Ledger:MasterKeyFile</c>, else <c>master.key</c> in the data folder.</summary>
    public static string FilePath(LedgerOptions options, DataOptions data)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(data);
        return Path.GetFullPath(options.MasterKeyFile ?? Path.Combine(data.Path, "master.key"));
    }

    /// <summary>
    /// The configured key if it exists, without creating a key file (for `doctor`, which changes nothing); null when
    /// the key file does not exist yet.
    /// </summary>
    public static MasterKey? TryLoadExisting(LedgerOptions options, DataOptions data)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!string.IsNullOrWhiteSpace(options.MasterKey))
        {
            return new MasterKey(Parse(options.MasterKey, "Ledger:MasterKey"), "Ledger:MasterKey", null);
        }

        var file = FilePath(options, data);
        return File.Exists(file) ? new MasterKey(Parse(File.ReadAllText(file), "the key file " + file), "the key file " + file, file) : null;
    }

    /// <summary>A key derived for one purpose (HKDF-SHA256), so no two uses share key material.</summary>
    public byte[] Derive(string purpose) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, _key, 32, salt: [], info: Encoding.UTF8.GetBytes("monal-push/" + purpose));

    internal byte[] Wrap(Guid deviceId, byte[] dataKey) => Aead.Seal(_key, dataKey, deviceId);

    internal byte[] Unwrap(Guid deviceId, byte[] wrapped) => Aead.Open(_key, wrapped, deviceId);

    private static byte[] Parse(string text, string source)
    {
        try
        {
            var key = Convert.FromBase64String(text.Trim());
            if (key.Length == 32)
            {
                return key;
            }
        }
        catch (FormatException)
        {
            // Reported below, with the same words as a wrong length.
        }

        throw new MasterKeyException($"The master key in {source} is not valid: it must be the base64 text of 32 random bytes " +
            "(what monal-push writes into a new key file). Restore the key file from the node that made it, or from its backup.");
    }

    private static (byte[] Key, bool Created) LoadOrCreate(string file)
    {
        if (File.Exists(file))
        {
            return (Parse(File.ReadAllText(file), "the key file " + file), false);
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

        var created = true;
        try
        {
            // Two processes starting together: the first rename wins and both read the winner's key.
            File.Move(tmp, file, overwrite: false);
        }
        catch (IOException)
        {
            File.Delete(tmp);
            created = false;
        }

        return (Parse(File.ReadAllText(file), "the key file " + file), created);
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
