using System.Security.Cryptography;
using Monal.Push.Delivery.Apns;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Faults;
using Npgsql;

namespace Monal.Push.Delivery.Dispatching;

internal sealed partial class PushDispatcher
{
    // Our reasons for final failures that never reached Apple (PushFailed.Status 0).
    internal const string ReasonExpired = "Expired";
    internal const string ReasonDeviceGone = "DeviceGone";
    internal const string ReasonDeviceErased = "DeviceErased";
    internal const string ReasonTokenUnreadable = "TokenUnreadable";
    internal const string ReasonUnknownPushModule = "UnknownPushModule";

    private async Task SendOneAsync(QueuedPush push)
    {
        var holdsSlot = true;
        try
        {
            var outcome = await DecideAsync(push);
            if (outcome is null || _abandoned)
            {
                return;
            }

            holdsSlot = !TryLeaveSlot();
            await RecordAsync(push, outcome);
            Count(outcome);
        }
        catch (OperationCanceledException)
        {
            // Killed, cut off at the end of a graceful stop, or the claim was about to lapse: nothing is recorded and
            // the push is sent again later with the same apns-id.
            Log.SendAbandoned(_logger, push.PushId);
        }
        catch (AppendRejectedException ex)
        {
            // The queue row is gone: another node recorded this push's outcome first, or the device was erased.
            Log.OutcomeRefused(_logger, push.PushId, ex.Reason);
        }
        catch (Exception ex) when (ex is NpgsqlException or IOException or TimeoutException or InvalidOperationException or ObjectDisposedException)
        {
            // The database failed before anything was sent (the device or its key could not be read): hand the claim
            // back once the database answers, so the push is taken again at once rather than after the lease.
            Log.PushNotPrepared(_logger, push.PushId, TransientFaults.Describe(ex));
            _toRelease.Enqueue(push.PushId);
        }
        finally
        {
            _held.TryRemove(KeyValuePair.Create(push.PushId, push));
            if (holdsSlot)
            {
                _slots.Release();
            }
            else
            {
                Interlocked.Decrement(ref _recordingWithoutSlot);
            }
        }
    }

    // Apple has answered: the send's slot goes to the next push while this outcome waits for its commit, which under
    // load waits behind the publishes' commits (and up to Ledger:DeferredLinger for others to share it). Holding the
    // slot through that wait made the commit's latency bound the sends: 256 slots held 50 ms each are 5,120 pushes a
    // second at most (docs/benchmarks.md, "Issue 16, thirteenth pass"). The push stays held, its claim renewed, until
    // its outcome is committed. At most MaxInFlight outcomes wait without a slot; past them the slot is kept, so a
    // database that stops answering stops the sends after 2 x MaxInFlight pushes whose outcome is not recorded yet.
    private bool TryLeaveSlot()
    {
        if (Interlocked.Increment(ref _recordingWithoutSlot) > _options.MaxInFlight)
        {
            Interlocked.Decrement(ref _recordingWithoutSlot);
            return false;
        }

        _slots.Release();
        return true;
    }

    // Records the outcome of a push that was sent, deferred: it may wait a few milliseconds to share its commit with
    // other outcomes (Ledger:DeferredLinger), as nobody waits on it. Not cancelled by a stop: an outcome must be
    // recorded even while stopping. A transient database failure is retried with backoff while the push stays held (its
    // claim is renewed as soon as the database answers): giving up would send the push again after the lease, the same
    // apns-id answered twice (issue 15, point 3). Only the end of a graceful stop (or a kill) cuts this off.
    private async Task RecordAsync(QueuedPush push, IPushOutcome outcome)
    {
        var backoff = Backoff.ForDatabase();
        while (true)
        {
            try
            {
                await _store.AppendDeferredAsync(push.DeviceId, StreamTypes.Device, [outcome], CancellationToken.None);
                return;
            }
            catch (Exception ex) when (ex is not AppendRejectedException && TransientFaults.IsTransient(ex, _abort.Token) && !_abandoned)
            {
                var delay = backoff.Next();
                Log.OutcomeRecordRetrying(_logger, push.PushId, TransientFaults.Describe(ex), delay);
                await Task.Delay(delay, _abort.Token);
            }
        }
    }

    // The event that records what happened to the push, or null when nothing may be recorded (the claim lapsed).
    private async Task<IPushOutcome?> DecideAsync(QueuedPush push)
    {
        var ct = _abort.Token;
        var now = _clock.GetUtcNow();
        if (now >= push.ExpiresAt)
        {
            Log.PushExpired(_logger, push.PushId, push.Attempts);
            return new PushFailed(push.PushId, push.DeviceId, push.LastStatus ?? 0, ReasonExpired, false, now);
        }

        var device = await _devices.GetAsync(push.DeviceId, ct);
        if (device is not { IsActive: true, EncryptedToken: not null })
        {
            LogDeviceGone(push);
            return Final(push, ReasonDeviceGone);
        }

        if (!_modules.TryGet(device.PushModule, out var module))
        {
            Log.UnknownPushModule(_logger, push.PushId, device.PushModule);
            return Final(push, ReasonUnknownPushModule);
        }

        string token;
        try
        {
            token = await _keys.DecryptAsync(push.DeviceId, device.EncryptedToken, ct);
        }
        catch (DataKeyShreddedException)
        {
            LogDeviceGone(push);
            return Final(push, ReasonDeviceErased);
        }
        catch (CryptographicException)
        {
            Log.TokenUnreadable(_logger, push.PushId, _hash.Redact(push.DeviceId));
            return Final(push, ReasonTokenUnreadable);
        }

        // Send only while the claim holds, and give up before it lapses: then no other node can be sending it.
        if (push.ClaimedUntil - _clock.GetUtcNow() <= _options.LeaseSafetyMargin)
        {
            Log.ClaimLapsed(_logger, push.PushId);
            return null;
        }

        var lease = push.StartLease(_options.LeaseSafetyMargin, _clock);
        ApnsResponse response;
        try
        {
            using var send = CancellationTokenSource.CreateLinkedTokenSource(ct, lease.Token);
            response = await module.SendAsync(token, push.PushId, send.Token);
        }
        catch (OperationCanceledException) when (lease.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            Log.ClaimLapsed(_logger, push.PushId);
            return null;
        }
        finally
        {
            push.EndLease();
        }

        _metrics.ApnsRequest(module.Name, response.Status, response.Reason);
        var at = _clock.GetUtcNow();
        switch (response.Outcome)
        {
            case ApnsOutcome.Delivered:
                var latency = Math.Max(0, (at - push.DueAt).TotalMilliseconds);
                _metrics.Latency(module.Name, latency);
                return new PushDelivered(push.PushId, push.DeviceId, response.ApnsId, at, latency);
            case ApnsOutcome.Transient:
                return new PushFailed(push.PushId, push.DeviceId, response.Status, response.Reason, true, at);
            case ApnsOutcome.TokenInvalidated:
                // Apple's timestamp is when it last knew the token valid; without one, now is the safe bound.
                return new TokenInvalidated(push.PushId, push.DeviceId, response.Reason ?? ApnsReasons.Unregistered, response.Timestamp ?? at, at);
            case ApnsOutcome.TokenRejected:
                return new TokenRejected(push.PushId, push.DeviceId, response.Reason ?? ApnsReasons.BadDeviceToken, at);
            default:
                return new PushFailed(push.PushId, push.DeviceId, response.Status, response.Reason, false, at);
        }
    }

    private void LogDeviceGone(QueuedPush push)
    {
        if (_logger.IsEnabled(Microsoft.Extensions.Logging.LogLevel.Debug))
        {
            var device = _hash.Redact(push.DeviceId);
            Log.DeviceGone(_logger, push.PushId, device);
        }
    }

    private PushFailed Final(QueuedPush push, string reason) =>
        new(push.PushId, push.DeviceId, 0, reason, false, _clock.GetUtcNow());

    private void Count(IPushOutcome outcome)
    {
        var counted = DeliveryOutcomes.Of(outcome);
        _metrics.Outcome(counted);
        switch (counted)
        {
            case DeliveryOutcome.Delivered:
                Interlocked.Increment(ref _delivered);
                break;
            case DeliveryOutcome.Retried:
                Interlocked.Increment(ref _retried);
                break;
            default:
                Interlocked.Increment(ref _failed);
                break;
        }
    }
}
