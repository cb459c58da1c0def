using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest.Devices;
using Monal.Push.Ingest.Limiting;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Ingest.Throttling;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.Faults;
using Npgsql;

namespace Monal.Push.Ingest.RequestingPush;

/// <summary>
/// Decides an XEP-0357 publish and records it (docs/architecture.md, "Ingest"). A result is sent only
/// after the PushRequested is committed (or after the push it was coalesced with is): the XMPP server may forget the
/// notification once it has our answer, so an acknowledged push must survive a crash.
/// <list type="bullet">
/// <item>Stateless (<c>pushModule</c>): the node is the APNs token, the device id is derived from module and token, and
/// the first publish creates the device (DeviceRegistered + PushRequested in one append).</item>
/// <item>Registered (<c>secret</c>): the node is a registered device UUID; the secret is checked in constant time.</item>
/// </list>
/// </summary>
internal sealed class PublishHandler(
    EventStore store,
    DataKeys dataKeys,
    KeyedHash hash,
    IDeviceLookup devices,
    PushThrottle throttle,
    DomainLimiter limiter,
    NewDeviceQuota quota,
    ConfiguredPushModules modules,
    IOptions<IngestOptions> options,
    TimeProvider clock,
    IngestMetrics metrics,
    ILogger<PublishHandler> logger) : IPublishHandler, IDisposable
{
    private readonly IngestOptions _options = options.Value;
    private readonly DeadTokenMemory _deadTokens = new(clock);
    private readonly SemaphoreSlim _working = new(options.Value.MaxConcurrentPublishes, options.Value.MaxConcurrentPublishes);

    public void Dispose() => _working.Dispose();

    public async ValueTask<PublishOutcome> HandleAsync(PublishRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var mode = request.Secret is not null ? DeviceMode.Registered : DeviceMode.Stateless;
        // The sending domain's own limits first: its excess is answered here, before it can take a share of what all
        // domains share (the pending appends below, the component link's in-flight stanzas).
        if (limiter.TryEnter(request.FromDomain, out var admission) is { } refusal)
        {
            var outcome = refusal == LimitKind.Overload ? PublishOutcome.ResourceConstraint : PublishOutcome.DomainLimited;
            metrics.Published(mode, null, outcome, started);
            return outcome;
        }

        PublishOutcome? answered = null;
        try
        {
            answered = await AdmittedAsync(request, mode, started, ct);
            return answered.Value;
        }
        finally
        {
            // Only what went through the ledger (or waited for a push that did) measures its queue: the quick answers
            // (a wrong secret, an unknown node) would otherwise hide a queue that every accepted publish waits in.
            limiter.Exit(admission, wentThroughTheLedger: answered is { IsAccepted: true });
        }
    }

    private async ValueTask<PublishOutcome> AdmittedAsync(PublishRequest request, DeviceMode mode, long started, CancellationToken ct)
    {
        // The limiter counts every admitted publish (this one included): one count for both checks.
        if (limiter.Pending > _options.MaxPendingAppends)
        {
            Log.Overloaded(logger, limiter.Pending);
            metrics.Published(mode, null, PublishOutcome.ResourceConstraint, started);
            return PublishOutcome.ResourceConstraint;
        }

        Guid? device = null;
        ThrottleDecision? decision = null;
        PublishOutcome outcome;
        await _working.WaitAsync(ct);
        try
        {
            (device, decision, outcome) = mode switch
            {
                DeviceMode.Registered => await RegisteredAsync(request, ct),
                _ => await StatelessAsync(request, ct),
            };
        }
        catch (Exception e) when (IsStorageFailure(e, ct))
        {
            Log.StorageUnavailable(logger, "publish", e.GetType().Name);
            outcome = PublishOutcome.InternalServerError;
        }
        finally
        {
            _working.Release();
        }

        if (logger.IsEnabled(LogLevel.Debug))
        {
            Log.PublishDecided(logger, device is { } id ? hash.Redact(id) : "-", mode.Name(), outcome.Condition ?? "result",
                decision?.ToString() ?? "none");
        }

        metrics.Published(mode, decision, outcome, started);
        return outcome;
    }

    /// <summary>Failures of the ledger that say "try later", never "forget this node".</summary>
    /// <remarks>
    /// Npgsql surfaces a command or pool timeout as a cancellation; ours (the link closing) is not a failure. Any other
    /// exception is answered the same way by the router; this one is counted and logged as the storage being down.
    /// </remarks>
    internal static bool IsStorageFailure(Exception e, CancellationToken ct) =>
        e is NpgsqlException || TransientFaults.IsTransient(e, ct);

    private async Task<(Guid?, ThrottleDecision?, PublishOutcome)> RegisteredAsync(PublishRequest request, CancellationToken ct)
    {
        if (!Guid.TryParse(request.Node, out var id))
        {
            // Only UUIDs are ever registered (RegistrationHandler validates them).
            return (null, null, PublishOutcome.ItemNotFound);
        }

        var device = await devices.FindAsync(id, ct);
        if (device is null || device.Mode != DeviceMode.Registered)
        {
            return (id, null, PublishOutcome.ItemNotFound);
        }

        // The secret is checked before anything else is revealed about the device (e.g. that it was unregistered).
        if (device.SecretHash is null || !hash.SecretMatches(request.Secret!, device.SecretHash))
        {
            return (id, null, PublishOutcome.NotAuthorized);
        }

        if (!device.IsActive)
        {
            return (id, null, PublishOutcome.ItemNotFound);
        }

        var throttled = await throttle.RunAsync(id, notBefore => AppendPushAsync(id, request.FromDomain, notBefore, null, ct), ct);
        return (id, throttled.Decision, throttled.Outcome);
    }

    private async Task<(Guid?, ThrottleDecision?, PublishOutcome)> StatelessAsync(PublishRequest request, CancellationToken ct)
    {
        var module = request.PushModule;
        if (module is null && await UnnamedModuleAsync(request, ct) is { } refused)
        {
            return refused;
        }

        module ??= _options.DefaultPushModule!;
        if (!modules.Contains(module) || !ApnsToken.TryNormalize(request.Node, out var token))
        {
            return (null, null, PublishOutcome.BadRequest);
        }

        var id = hash.StatelessDeviceId(module, token);
        if (_deadTokens.IsDead(id))
        {
            return (id, null, PublishOutcome.ItemNotFound);
        }

        var throttled = await throttle.RunAsync(id, async notBefore =>
        {
            var device = await devices.FindAsync(id, ct);
            if (device is null)
            {
                // A token nobody used before: the domain's new-device quota decides (issue 18). A server publishing to
                // random tokens would otherwise make us store a device, a data key and a stream for each.
                if (!await quota.TryTakeAsync(QuotaSubject.Domain(request.FromDomain), ct))
                {
                    return PublishOutcome.NewDeviceQuotaUsed;
                }

                return await CreateAndPushAsync(id, module, token, request.FromDomain, notBefore, ct);
            }

            return device.IsActive
                ? await AppendPushAsync(id, request.FromDomain, notBefore, null, ct)
                : PublishOutcome.ItemNotFound;
        }, ct);
        return (id, throttled.Decision, throttled.Outcome);
    }

    /// <summary>
    /// A publish that names neither a push module nor a secret (no publish-options, an empty one, or a form with only
    /// FORM_TYPE: Monal 5.2.0 enabled push without a form). A registered node without its secret is a malformed
    /// request; a token node goes to <c>Ingest:DefaultPushModule</c>, as fpush does, and without that setting is a
    /// <c>bad-request</c> naming it (never <c>item-not-found</c>: ejabberd would drop the user's registration at once).
    /// Anything else is a node we do not know. Null: go on with the default module.
    /// </summary>
    private async Task<(Guid?, ThrottleDecision?, PublishOutcome)?> UnnamedModuleAsync(PublishRequest request, CancellationToken ct)
    {
        if (Guid.TryParse(request.Node, out var id) && await devices.FindAsync(id, ct) is { Mode: DeviceMode.Registered })
        {
            return (id, null, PublishOutcome.BadRequest);
        }

        if (!ApnsToken.TryNormalize(request.Node, out _))
        {
            return (null, null, PublishOutcome.ItemNotFound);
        }

        return string.IsNullOrEmpty(_options.DefaultPushModule) ? (null, null, PublishOutcome.NoPushModule) : null;
    }

    private async Task<PublishOutcome> CreateAndPushAsync(
        Guid id, string module, string token, string domain, DateTimeOffset? notBefore, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var registered = new DeviceRegistered(
            id, DeviceMode.Stateless, module, await dataKeys.EncryptAsync(id, token, ct), SecretHash: null, domain, now);
        try
        {
            await store.AppendAsync(id, StreamTypes.Device, ExpectedVersion.NoStream, [registered, Push(id, domain, now, notBefore)], ct: ct);
            Log.StatelessDeviceCreated(logger, hash.Redact(id), module);
            return PublishOutcome.Accepted;
        }
        catch (StreamVersionConflictException)
        {
            // Another process created the device a moment ago: this publish is an ordinary push to it.
            return await AppendPushAsync(id, domain, notBefore, now, ct);
        }
        catch (AppendRejectedException)
        {
            // Apple declared this token dead (dead_tokens, migrations/0007): the device stays unknown, and the key
            // made for it a moment ago encrypts nothing that was stored.
            _deadTokens.Remember(id);
            await dataKeys.DeleteAsync(id, CancellationToken.None);
            Log.DeadTokenRefused(logger, hash.Redact(id), module);
            return PublishOutcome.ItemNotFound;
        }
        catch
        {
            // The append failed (the database went away): the key may be stored without a stream, and the hourly job
            // deletes such orphans. Forgetting it here makes a retry read or make the key afresh, never encrypt with
            // one that job may have deleted.
            dataKeys.Forget(id);
            throw;
        }
    }

    private async Task<PublishOutcome> AppendPushAsync(
        Guid id, string domain, DateTimeOffset? notBefore, DateTimeOffset? now, CancellationToken ct)
    {
        try
        {
            await store.AppendAsync(id, StreamTypes.Device, ExpectedVersion.Any, [Push(id, domain, now ?? clock.GetUtcNow(), notBefore)], ct: ct);
            return PublishOutcome.Accepted;
        }
        catch (AppendRejectedException)
        {
            // The device projection refused: the device is missing, unregistered or its token is dead.
            return PublishOutcome.ItemNotFound;
        }
    }

    private PushRequested Push(Guid id, string domain, DateTimeOffset now, DateTimeOffset? notBefore) =>
        new(Guid.CreateVersion7(now), id, domain, now, (notBefore ?? now) + _options.PushTtl, notBefore);
}
