using System.Security.Cryptography;

namespace Monal.Push.Load.Publishing;

/// <summary>
/// The simulated devices and the choice of the next publish. Tokens and node ids come from a seeded generator, so two
/// runs with the same mix address the same devices. Registered devices become usable once <see cref="SetRegistered"/>
/// stored the secret the server handed out.
/// </summary>
internal sealed class DeviceSet
{
    private readonly LoadMix _mix;
    private readonly byte[][] _tokens;
    private readonly string[] _tokenText;
    private readonly Guid[] _nodes;
    private readonly byte[]?[] _registeredNodes;
    private readonly byte[]?[] _secrets;
    private readonly byte[][] _unknownNodes;
    private readonly byte[][] _domains;
    private readonly byte[] _pushModule;
    private readonly byte[] _wrongSecret;
    private int[] _usableRegistered = [];

    public DeviceSet(LoadMix mix)
    {
        ArgumentNullException.ThrowIfNull(mix);
        ArgumentOutOfRangeException.ThrowIfLessThan(mix.Devices, 1);
        _mix = mix;
        var random = new Random(mix.Seed);
        var n = mix.Devices;
        RegisteredCount = (int)Math.Round(n * Math.Clamp(mix.RegisteredDeviceShare, 0, 1));
        _tokens = new byte[n][];
        _tokenText = new string[n];
        _nodes = new Guid[n];
        _registeredNodes = new byte[]?[n];
        _secrets = new byte[]?[n];
        Span<byte> raw = stackalloc byte[32];
        Span<byte> guid = stackalloc byte[16];
        for (var i = 0; i < n; i++)
        {
            random.NextBytes(raw);
            _tokenText[i] = Convert.ToHexStringLower(raw);
            _tokens[i] = PublishTemplates.Encode(_tokenText[i]);
            random.NextBytes(guid);
            _nodes[i] = new Guid(guid);
        }

        _unknownNodes = [.. Enumerable.Range(0, 1024).Select(_ => PublishTemplates.Encode(Guid.NewGuid().ToString("D")))];
        _domains = [.. mix.ServerDomains.Select(PublishTemplates.Encode)];
        _pushModule = PublishTemplates.Encode(mix.PushModule);
        _wrongSecret = PublishTemplates.Encode(Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)));
    }

    public int Count => _tokens.Length;

    /// <summary>Devices [0, RegisteredCount) are meant to be registered; the rest are stateless.</summary>
    public int RegisteredCount { get; }

    public int UsableRegisteredCount => _usableRegistered.Length;

    /// <summary>Devices [RegisteredCount, Count) publish statelessly (node = token).</summary>
    public int StatelessCount => _tokens.Length - RegisteredCount;

    public string TokenOf(int device) => _tokenText[device];

    public Guid NodeOf(int device) => _nodes[device];

    /// <summary>Stores what <c>/v1/register</c> answered for a device. Not thread-safe with <see cref="Next"/>.</summary>
    public void SetRegistered(int device, string node, string secret)
    {
        _registeredNodes[device] = PublishTemplates.Encode(node);
        _secrets[device] = PublishTemplates.Encode(secret);
    }

    /// <summary>Call once after registering: from now on the registered devices take part.</summary>
    public void Seal() => _usableRegistered = [.. Enumerable.Range(0, RegisteredCount).Where(i => _secrets[i] is not null)];

    /// <summary>The next publish: category, style, domain, node and the publish-option value.</summary>
    public Publish Next(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var style = random.NextDouble() < _mix.ProsodyShare ? PublishStyle.ProsodySummary
            : random.NextDouble() < _mix.EjabberdEmptyShare ? PublishStyle.EjabberdEmpty
            : PublishStyle.EjabberdSummary;
        var domain = _domains[random.Next(_domains.Length)];
        var r = random.NextDouble();
        if (r < _mix.UnknownNodeShare)
        {
            return new Publish(RequestCategory.UnknownNode, style, domain, _unknownNodes[random.Next(_unknownNodes.Length)], _wrongSecret);
        }

        var usable = _usableRegistered;
        if (r < _mix.UnknownNodeShare + _mix.WrongSecretShare && usable.Length > 0)
        {
            var victim = usable[random.Next(usable.Length)];
            return new Publish(RequestCategory.WrongSecret, style, domain, _registeredNodes[victim]!, _wrongSecret);
        }

        var device = random.Next(_tokens.Length);
        if (device < RegisteredCount)
        {
            if (_secrets[device] is { } secret)
            {
                return new Publish(RequestCategory.Registered, style, DomainOf(device), _registeredNodes[device]!, secret);
            }

            // Registration failed (or was skipped): publish to a stateless device instead.
            device = RegisteredCount + random.Next(Math.Max(1, _tokens.Length - RegisteredCount));
            device = Math.Min(device, _tokens.Length - 1);
        }

        return new Publish(RequestCategory.Stateless, style, DomainOf(device), _tokens[device], _pushModule);
    }

    /// <summary>
    /// The server a device's account lives on: always the same one, as on the real network (a user's push registration
    /// is made by their own server), so the device's known domains stop growing after its first publish.
    /// </summary>
    private byte[] DomainOf(int device) => _domains[device % _domains.Length];

    /// <summary>The <paramref name="k"/>-th stateless device's publish (wrapping around), Prosody-style.</summary>
    public Publish Stateless(long k)
    {
        var device = RegisteredCount + (int)(k % Math.Max(1, StatelessCount));
        device = Math.Min(device, _tokens.Length - 1);
        return new Publish(RequestCategory.Stateless, PublishStyle.ProsodySummary, DomainOf(device), _tokens[device], _pushModule);
    }

    /// <summary>One publish to write: the byte arrays are shared and must not be changed.</summary>
    internal readonly record struct Publish(RequestCategory Category, PublishStyle Style, byte[] From, byte[] Node, byte[] OptionValue)
    {
        public bool UsesSecret => Category != RequestCategory.Stateless;
    }
}
