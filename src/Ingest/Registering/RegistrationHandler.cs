using System.Buffers.Text;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest.Devices;
using Monal.Push.Ingest.Limiting;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Events;

namespace Monal.Push.Ingest.Registering;

/// <summary>Why a v1 registration was refused; the HTTP endpoints map it to a status code.</summary>
internal enum RegistrationFailure
{
    None,

    /// <summary>Missing or malformed fields, or a push type we do not serve.</summary>
    Invalid,

    /// <summary>Unregister of a node that is not registered.</summary>
    NotFound,

    /// <summary>The requester's new-device quota is used up: try later (HTTP 429).</summary>
    QuotaUsed,
}

/// <summary>A registration answer with the reason of a refusal.</summary>
internal readonly record struct RegistrationReply(RegistrationResult Result, RegistrationFailure Failure);

/// <summary>
/// mod_push_appserver's v1 registration, shared by the HTTP endpoints and the XEP-0050 ad-hoc commands. A new node
/// gets a random secret (32 bytes, base64url), stored hashed for the constant-time check and encrypted with the
/// device's data key; registering the same node again hands the same secret back (as mod_push_appserver does, so
/// every XMPP account of the device keeps a working secret) and records RegistrationRenewed with the possibly new
/// token: a replaced token becomes unreadable (see RenewAsync). Storage failures throw: the router answers them
/// <c>wait</c>/<c>internal-server-error</c>, the HTTP endpoint 503.
/// </summary>
internal sealed class RegistrationHandler(
    EventStore store,
    DataKeys dataKeys,
    KeyedHash hash,
    ConfiguredPushModules modules,
    NewDeviceQuota quota,
    IOptions<RegistrationOptions> options,
    TimeProvider clock,
    IngestMetrics metrics,
    ILogger<RegistrationHandler> logger) : IRegistrationHandler
{
    public const string ApnsType = "apns";

    private readonly string? _pushModule = options.Value.PushModule;

    public async ValueTask<RegistrationResult> RegisterAsync(string type, string node, string token, string fromDomain, CancellationToken ct) =>
        (await RegisterAsync(type, node, token, fromDomain, "adhoc", ct)).Result;

    public async ValueTask<RegistrationResult> UnregisterAsync(string type, string node, string fromDomain, CancellationToken ct) =>
        (await UnregisterAsync(type, node, fromDomain, "adhoc", ct)).Result;

    /// <summary>
    /// Registers <paramref name="node"/>; <paramref name="domain"/> is null for HTTP (the requester is the app). A new
    /// node counts against the new-device quota of <paramref name="client"/> (HTTP) or of the domain (ad-hoc).
    /// </summary>
    internal async Task<RegistrationReply> RegisterAsync(
        string? type, string? node, string? token, string? domain, string channel, CancellationToken ct, QuotaSubject? client = null)
    {
        if (string.IsNullOrEmpty(type) || string.IsNullOrEmpty(node) || string.IsNullOrEmpty(token))
        {
            return Refuse("register", channel, "Missing parameters!");
        }

        if (Validate(type, node) is { } refused)
        {
            return Refuse("register", channel, refused);
        }

        if (!ApnsToken.TryNormalize(token, out var apnsToken))
        {
            return Refuse("register", channel, "Invalid token!");
        }

        var id = Guid.Parse(node);
        var module = _pushModule!;
        // Another node may have rotated this device's key: encrypt with the newest generation in the database.
        dataKeys.Forget(id);
        // Two first registrations of one node race on NoStream; the loser renews the winner's device.
        for (var attempt = 0; ; attempt++)
        {
            var existing = await LatestRegistrationAsync(id, ct);
            if (existing is { Mode: not DeviceMode.Registered })
            {
                return Refuse("register", channel, "Invalid node!");
            }

            if (existing is null && (client ?? (domain is null ? null : QuotaSubject.Domain(domain))) is { } subject
                && !await quota.TryTakeAsync(subject, ct))
            {
                Log.RegistrationRefused(logger, "register", channel, "new-device quota used up");
                metrics.Registration("register", channel, "limited");
                return new(RegistrationResult.Later("Too many new registrations, try again later!"), RegistrationFailure.QuotaUsed);
            }

            var now = clock.GetUtcNow();
            try
            {
                if (existing is { EncryptedSecret: { } encryptedSecret })
                {
                    var kept = await dataKeys.DecryptAsync(id, encryptedSecret, ct);
                    await RenewAsync(id, module, apnsToken, kept, existing, domain, now, ct);
                    Log.DeviceRegistered(logger, hash.Redact(id), channel, renewed: true);
                    metrics.Registration("register", channel, "renewed");
                    return new(RegistrationResult.Ok(node, kept), RegistrationFailure.None);
                }

                // A new node (or one registered before secrets were kept encrypted: it gets a new secret).
                var secret = NewSecret();
                var registered = new DeviceRegistered(
                    id, DeviceMode.Registered, module, await dataKeys.EncryptAsync(id, apnsToken, ct), hash.HashSecret(secret), domain, now,
                    await dataKeys.EncryptAsync(id, secret, ct));
                await store.AppendAsync(id, StreamTypes.Device,
                    existing is null ? ExpectedVersion.NoStream : ExpectedVersion.Any, [registered], ct: ct);
                Log.DeviceRegistered(logger, hash.Redact(id), channel, renewed: false);
                metrics.Registration("register", channel, "registered");
                return new(RegistrationResult.Ok(node, secret), RegistrationFailure.None);
            }
            catch (StreamVersionConflictException) when (attempt < 2)
            {
                // Read the winner's registration and hand its secret back.
            }
        }
    }

    /// <summary>
    /// Records a renewal. The policy lists a token, its registration and its latest renewal time, not a history:
    /// a replaced token is made unreadable (the data key is rotated, the new token and the secret are encrypted with
    /// the new generation, the older generations are deleted once the devices row holds the new token), and the
    /// renewals before this one are deleted from the stream.
    /// </summary>
    private async Task RenewAsync(
        Guid id, string module, string token, string secret, Registration existing, string? domain, DateTimeOffset now, CancellationToken ct)
    {
        var replaced = !string.Equals(await CurrentTokenAsync(id, existing, ct), token, StringComparison.Ordinal);
        if (replaced)
        {
            await dataKeys.RotateAsync(id, ct);
        }

        // The secret rides along every renewal: the renewals before this one are deleted below.
        var renewed = new RegistrationRenewed(id, module, await dataKeys.EncryptAsync(id, token, ct), domain, now,
            await dataKeys.EncryptAsync(id, secret, ct));
        var appended = await store.AppendAsync(id, StreamTypes.Device, ExpectedVersion.Any, [renewed], ct: ct);
        if (replaced)
        {
            await dataKeys.RetireSupersededAsync(id, ct);
        }

        await store.DeleteSupersededAsync(id, typeof(RegistrationRenewed), appended.Version, ct);
    }

    /// <summary>The token the device holds now, or null when it cannot be read (shredded, or Apple declared it dead).</summary>
    private async Task<string?> CurrentTokenAsync(Guid id, Registration existing, CancellationToken ct)
    {
        try
        {
            return await dataKeys.DecryptAsync(id, existing.EncryptedToken, ct);
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    internal async Task<RegistrationReply> UnregisterAsync(string? type, string? node, string? domain, string channel, CancellationToken ct)
    {
        _ = domain; // mod_push_appserver ignores who unregisters; so do we (the node is the credential).
        if (string.IsNullOrEmpty(type) || string.IsNullOrEmpty(node))
        {
            return Refuse("unregister", channel, "Missing parameters!");
        }

        if (Validate(type, node) is { } refused)
        {
            return Refuse("unregister", channel, refused);
        }

        var id = Guid.Parse(node);
        if (await LatestRegistrationAsync(id, ct) is not { Mode: DeviceMode.Registered })
        {
            metrics.Registration("unregister", channel, "not-found");
            Log.RegistrationRefused(logger, "unregister", channel, "unknown node");
            return new(RegistrationResult.Error("Node not found!"), RegistrationFailure.NotFound);
        }

        await store.AppendAsync(id, StreamTypes.Device, ExpectedVersion.Any, [new DeviceUnregistered(id, clock.GetUtcNow())], ct: ct);
        Log.DeviceUnregistered(logger, hash.Redact(id), channel);
        metrics.Registration("unregister", channel, "unregistered");
        return new(RegistrationResult.Ok(node), RegistrationFailure.None);
    }

    private string? Validate(string type, string node)
    {
        if (type != ApnsType)
        {
            return "Unknown push type!";
        }

        if (!modules.Contains(_pushModule))
        {
            // Registration:PushModule is validated at start; without it, v1 registrations are simply not offered.
            return "Registrations are not enabled on this server!";
        }

        return Guid.TryParse(node, out _) ? null : "Invalid node!";
    }

    /// <summary>What the stream says of the device's registration now: mode, latest token and latest secret.</summary>
    private sealed record Registration(DeviceMode Mode, string EncryptedToken, string? EncryptedSecret);

    private async Task<Registration?> LatestRegistrationAsync(Guid id, CancellationToken ct)
    {
        var events = await store.ReadStreamAsync(id, ct);
        DeviceMode? mode = null;
        string? token = null;
        string? secret = null;
        foreach (var e in events)
        {
            switch (e.Data)
            {
                case DeviceRegistered r:
                    (mode, token, secret) = (r.Mode, r.EncryptedToken, r.EncryptedSecret);
                    break;
                case RegistrationRenewed r:
                    token = r.EncryptedToken;
                    secret = r.EncryptedSecret ?? secret;
                    break;
            }
        }

        return mode is { } m ? new Registration(m, token!, secret) : null;
    }

    private RegistrationReply Refuse(string action, string channel, string text)
    {
        Log.RegistrationRefused(logger, action, channel, text);
        metrics.Registration(action, channel, "invalid");
        return new(RegistrationResult.Error(text), RegistrationFailure.Invalid);
    }

    private static string NewSecret()
    {
        Span<byte> bytes = stackalloc byte[32];
        RandomNumberGenerator.Fill(bytes);
        return Base64Url.EncodeToString(bytes);
    }
}
