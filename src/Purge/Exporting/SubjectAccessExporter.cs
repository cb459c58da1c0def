using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Events;
using Monal.Push.Purge.Erasing;
using Monal.Push.Purge.Locating;
using Npgsql;

namespace Monal.Push.Purge.Exporting;

/// <summary>
/// `gdpr export --node N | --token T [--format json|text]`: everything held about a device, folded from its event
/// stream (the ledger is the source of truth) and completed from the read models (devices, push_log), with the
/// token decrypted, plus purposes, retention periods, recipients and source (Art. 15). Each answer is recorded as a
/// <see cref="SubjectAccessExported"/> event on the Gdpr stream, which carries no personal data.
/// </summary>
public sealed class SubjectAccessExporter(
    NpgsqlDataSource dataSource,
    EventStore store,
    DataKeys dataKeys,
    DeviceLocator locator,
    DeviceEraser eraser,
    IOptions<RetentionOptions> options,
    TimeProvider clock,
    ILogger<SubjectAccessExporter> logger)
{
    /// <summary>Collects the export, renders it and records that the request was answered.</summary>
    public async Task<SubjectAccessResult> ExportAsync(SubjectQuery query, ExportFormat format, CancellationToken ct)
    {
        var export = await CollectAsync(query, ct);
        var document = format == ExportFormat.Json ? RenderJson(export) : RenderText(export);
        await store.AppendAsync(
            SystemStreams.Gdpr,
            StreamTypes.System,
            ExpectedVersion.Any,
            [new SubjectAccessExported(export.RequestId, format.ToString().ToLowerInvariant(), export.ExportedAt)],
            ct: CancellationToken.None);
        Log.SubjectAccessExported(logger, export.RequestId, format.ToString());
        return new SubjectAccessResult(export, document);
    }

    /// <summary>Collects what is held, without recording anything.</summary>
    public async Task<SubjectAccessExport> CollectAsync(SubjectQuery query, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(query);
        var devices = new List<DeviceExport>();
        foreach (var id in await locator.LocateAsync(query, ct))
        {
            devices.Add(await DeviceAsync(id, ct));
        }

        return new SubjectAccessExport(Guid.CreateVersion7(), clock.GetUtcNow(), query.Kind, devices, Processing(options.Value));
    }

    /// <summary>The export as indented JSON.</summary>
    public static string RenderJson(SubjectAccessExport export) => JsonSerializer.Serialize(export, PurgeJson.Default.SubjectAccessExport);

    /// <summary>The export as text for a person.</summary>
    public static string RenderText(SubjectAccessExport export)
    {
        ArgumentNullException.ThrowIfNull(export);
        var t = new StringBuilder();
        t.AppendLine("Monal push server: personal data held (GDPR Art. 15)");
        t.AppendLine(CultureInfo.InvariantCulture, $"Request {export.RequestId}, answered {Time(export.ExportedAt)}, looked up by {export.Query}");
        t.AppendLine();
        if (export.Devices.Count == 0)
        {
            t.AppendLine("No data is held about this device.");
        }

        foreach (var d in export.Devices)
        {
            t.AppendLine(CultureInfo.InvariantCulture, $"Device {d.DeviceId}");
            Line(t, "Mode", d.Mode);
            Line(t, "Push module", d.PushModule);
            Line(t, "APNs token", d.Token ?? d.TokenStatus);
            if (d.EarlierTokens.Count > 0)
            {
                Line(t, "Earlier tokens", string.Join(", ", d.EarlierTokens));
            }

            Line(t, "Secret", SecretText(d));
            Line(t, "Registered", Time(d.RegisteredAt));
            Line(t, "Renewed", Time(d.RenewedAt));
            Line(t, "Unregistered", Time(d.UnregisteredAt));
            Line(t, "Last successful push", Time(d.LastPushAt));
            Line(t, "Last push error", d.LastErrorAt is null ? "never" : $"{Time(d.LastErrorAt)} ({d.LastErrorReason})");
            Line(t, "Token declared invalid by Apple", d.InvalidatedAt is null ? "no" : $"{Time(d.InvalidatedAt)} (Apple's timestamp {Time(d.AppleTimestamp)})");
            Line(t, "Token rejected by Apple", Time(d.RejectedAt));
            Line(t, "XMPP domains", d.Domains.Count == 0 ? "none" : string.Join(", ", d.Domains));
            Line(t, "Stored in", string.Join(", ", d.HeldIn.Where(p => p.Value > 0).Select(p => $"{p.Key} ({p.Value})")));
            t.AppendLine(CultureInfo.InvariantCulture, $"  Pushes held ({d.Pushes.Count}):");
            foreach (var p in d.Pushes)
            {
                t.AppendLine(CultureInfo.InvariantCulture,
                    $"    {Time(p.RequestedAt)} from {p.Domain}: {p.Outcome}{(p.Status is null ? "" : $" {p.Status}")}{(p.Reason is null ? "" : $" {p.Reason}")}{(p.OutcomeAt is null ? "" : $" at {Time(p.OutcomeAt)}")}");
            }

            t.AppendLine();
        }

        Bullets(t, "Purposes:", export.Processing.Purposes);
        Bullets(t, "Retention periods:", export.Processing.RetentionPeriods.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Category}: {r.Period}")));
        Bullets(t, "Recipients:", export.Processing.Recipients);
        Bullets(t, "Source of the data:", export.Processing.Sources);

        return t.ToString();
    }

    private static void Bullets(StringBuilder t, string heading, IEnumerable<string> items)
    {
        t.AppendLine(heading);
        foreach (var item in items)
        {
            t.AppendLine(CultureInfo.InvariantCulture, $"  - {item}");
        }
    }

    // A registered device's secret is kept in two forms (RegistrationHandler, as mod_push_appserver does): the hash
    // checks the secret an XMPP server sends with each publish; the copy encrypted with the device's data key lets a
    // registration of the same node get the same secret back, so its XMPP servers keep working.
    private static string SecretText(DeviceExport d) => (d.SecretStored, d.SecretEncrypted) switch
    {
        (_, true) => "kept in two forms: a keyed hash, to check the secret your XMPP server sends with each push, and a copy "
            + "encrypted with this device's data key, to hand the same secret back when the device registers again (as "
            + "mod_push_appserver does). Erasure deletes the data key, which makes the encrypted copy unreadable everywhere, "
            + "backups included"
            + (d.TokenStatus.StartsWith("erased", StringComparison.Ordinal) ? "; this device's data key is already deleted" : ""),
        (true, false) => "stored as a keyed hash only (the secret itself is not kept)",
        _ => "none",
    };

    internal static ProcessingInformation Processing(RetentionOptions o) => new(
        [
            "Waking the device through Apple Push Notification service when one of its XMPP servers asks (XEP-0357).",
            "Keeping a record of each push and its outcome to operate the service and to prove retention, for the push-log period only.",
            "Deleting tokens Apple reports as invalid.",
        ],
        [
            new("Push log (each push and its outcome)", $"{Days(o.PushLog)}, deleted by a job running every {o.PurgeInterval}"),
            new("Pushes per UTC day and XMPP domain (counts, no device identifier)",
                $"{Days(o.PushLog)}, deleted with the push log: on a domain with a single user a day's count describes that person"),
            new("Server log files", $"{Days(o.LogFiles)}, deleted by a job running every {o.PurgeInterval}"),
            new("Registration (token, device UUID, secret as a keyed hash and encrypted, times, domains)",
                "until the device unregisters or asks for erasure; a token Apple reports invalid is deleted within "
                + $"{o.InvalidTokenInterval} unless the device registered again after Apple's timestamp"),
        ],
        ["Apple Push Notification service (Apple Inc.): the token and an empty wake-up notification, never message content."],
        [
            "The XMPP servers that enabled push for the account (the domains listed above), XEP-0357 publish requests.",
            "The Monal app's registration (v1 register), for registered devices.",
        ]);

    private async Task<DeviceExport> DeviceAsync(Guid deviceId, CancellationToken ct)
    {
        var f = new Fold();
        foreach (var e in await store.ReadStreamAsync(deviceId, ct))
        {
            f.Apply(e.Data);
        }

        await MergeDevicesRowAsync(deviceId, f, ct);
        await MergePushLogAsync(deviceId, f, ct);
        var dead = await MergeDeadTokenAsync(deviceId, f, ct);

        string? token = null;
        var status = dead
            ? "erased; only a keyed id of the device is kept, so that a publish cannot make it again, for the push-log period"
            : "none held";
        var earlier = new List<string>();
        if (f.EncryptedTokens.Count > 0)
        {
            try
            {
                token = await dataKeys.DecryptAsync(deviceId, f.EncryptedTokens[^1], ct);
                status = "decrypted";
                foreach (var old in f.EncryptedTokens.Take(f.EncryptedTokens.Count - 1))
                {
                    try
                    {
                        var clear = await dataKeys.DecryptAsync(deviceId, old, ct);
                        if (clear != token && !earlier.Contains(clear))
                        {
                            earlier.Add(clear);
                        }
                    }
                    catch (CryptographicException)
                    {
                        // A token replaced by re-registration: its key generation was deleted, it is erased.
                    }
                }
            }
            catch (CryptographicException)
            {
                status = "erased (its data key was deleted)";
            }
        }

        return new DeviceExport(
            deviceId,
            f.Mode ?? "unknown",
            f.PushModule ?? "unknown",
            token,
            status,
            earlier,
            f.SecretStored,
            f.SecretEncrypted,
            f.RegisteredAt,
            f.RenewedAt,
            f.UnregisteredAt,
            f.LastPushAt,
            f.LastErrorAt,
            f.LastErrorReason,
            f.InvalidatedAt,
            f.AppleTimestamp,
            f.RejectedAt,
            [.. f.Domains.Order(StringComparer.Ordinal)],
            [.. f.Pushes.Values.OrderBy(p => p.RequestedAt)],
            await eraser.InventoryAsync(deviceId, ct));
    }

    private async Task MergeDevicesRowAsync(Guid deviceId, Fold f, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            select mode, push_module, encrypted_token, secret_hash is not null, registered_at, renewed_at, last_push_at,
                   last_error_at, last_error_reason, invalidated_at, apple_timestamp, rejected_at, unregistered_at, domains
            from devices where device_id = $1
            """);
        cmd.Parameters.Add(new() { Value = deviceId });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct))
        {
            return;
        }

        // The row says 'registered' or 'stateless'; the export names modes as the events do (DeviceMode).
        f.Mode ??= DeviceModes.Parse(r.GetString(0)).ToString();
        f.PushModule ??= r.IsDBNull(1) ? null : r.GetString(1);
        if (!r.IsDBNull(2) && !f.EncryptedTokens.Contains(r.GetString(2)))
        {
            f.EncryptedTokens.Add(r.GetString(2));
        }

        f.SecretStored |= r.GetBoolean(3);
        f.RegisteredAt ??= Time(r, 4);
        f.RenewedAt ??= Time(r, 5);
        f.LastPushAt ??= Time(r, 6);
        f.LastErrorAt ??= Time(r, 7);
        f.LastErrorReason ??= r.IsDBNull(8) ? null : r.GetString(8);
        f.InvalidatedAt ??= Time(r, 9);
        f.AppleTimestamp ??= Time(r, 10);
        f.RejectedAt ??= Time(r, 11);
        f.UnregisteredAt ??= Time(r, 12);
        if (!r.IsDBNull(13))
        {
            f.Domains.UnionWith(r.GetFieldValue<string[]>(13));
        }
    }

    // A stateless device erased after Apple declared its token dead leaves only its keyed id and Apple's verdict
    // (dead_tokens, migrations/0007). Returns whether there is such a row.
    private async Task<bool> MergeDeadTokenAsync(Guid deviceId, Fold f, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select apple_timestamp, dead_at, reason from dead_tokens where device_id = $1");
        cmd.Parameters.Add(new() { Value = deviceId });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct))
        {
            return false;
        }

        f.Mode ??= nameof(DeviceMode.Stateless);
        if (r.IsDBNull(0))
        {
            f.RejectedAt ??= r.GetFieldValue<DateTimeOffset>(1);
        }
        else
        {
            f.InvalidatedAt ??= r.GetFieldValue<DateTimeOffset>(1);
            f.AppleTimestamp ??= r.GetFieldValue<DateTimeOffset>(0);
        }

        f.LastErrorReason ??= r.IsDBNull(2) ? null : r.GetString(2);
        return true;
    }

    private async Task MergePushLogAsync(Guid deviceId, Fold f, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            select push_id, domain, requested_at, outcome, status, reason, outcome_at, latency_ms
            from push_log where device_id = $1
            """);
        cmd.Parameters.Add(new() { Value = deviceId });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var id = r.GetGuid(0);
            if (f.Pushes.ContainsKey(id))
            {
                continue;
            }

            int? status = r.IsDBNull(4) ? null : r.GetInt32(4);
            f.Pushes[id] = new PushExport(
                id,
                r.GetString(1),
                r.GetFieldValue<DateTimeOffset>(2),
                OutcomeOf(r.GetString(3), status),
                status,
                r.IsDBNull(5) ? null : r.GetString(5),
                Time(r, 6),
                r.IsDBNull(7) ? null : r.GetDouble(7));
            f.Domains.Add(r.GetString(1));
        }
    }

    /// <summary>A push_log outcome in the words the export uses for the same outcome folded from events.</summary>
    private static string OutcomeOf(string pushLogOutcome, int? status) => pushLogOutcome switch
    {
        "pending" => status is null ? "requested" : "failed (transient)",
        "invalidated" => "token invalid",
        "rejected" => "token rejected",
        _ => pushLogOutcome,
    };

    private static DateTimeOffset? Time(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetFieldValue<DateTimeOffset>(i);

    private static string Time(DateTimeOffset? t) =>
        t is null ? "never" : t.Value.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);

    private static string Days(TimeSpan t) => t.TotalDays == Math.Floor(t.TotalDays) ? $"{t.TotalDays:0} days" : t.ToString();

    private static void Line(StringBuilder t, string label, string value) =>
        t.AppendLine(CultureInfo.InvariantCulture, $"  {label + ":",-34}{value}");

    /// <summary>Folds a device's events into the fields of the export.</summary>
    private sealed class Fold
    {
        public string? Mode { get; set; }
        public string? PushModule { get; set; }
        public List<string> EncryptedTokens { get; } = [];
        public bool SecretStored { get; set; }
        public bool SecretEncrypted { get; set; }
        public DateTimeOffset? RegisteredAt { get; set; }
        public DateTimeOffset? RenewedAt { get; set; }
        public DateTimeOffset? UnregisteredAt { get; set; }
        public DateTimeOffset? LastPushAt { get; set; }
        public DateTimeOffset? LastErrorAt { get; set; }
        public string? LastErrorReason { get; set; }
        public DateTimeOffset? InvalidatedAt { get; set; }
        public DateTimeOffset? AppleTimestamp { get; set; }
        public DateTimeOffset? RejectedAt { get; set; }
        public HashSet<string> Domains { get; } = new(StringComparer.Ordinal);
        public Dictionary<Guid, PushExport> Pushes { get; } = [];

        public void Apply(object data)
        {
            switch (data)
            {
                case DeviceRegistered r:
                    Mode = r.Mode.ToString();
                    PushModule = r.PushModule;
                    AddToken(r.EncryptedToken);
                    SecretStored |= r.SecretHash is not null;
                    SecretEncrypted |= r.EncryptedSecret is not null;
                    RegisteredAt ??= r.RegisteredAt;
                    AddDomain(r.Domain);
                    break;
                case RegistrationRenewed r:
                    PushModule = r.PushModule;
                    AddToken(r.EncryptedToken);
                    RenewedAt = r.RenewedAt;
                    AddDomain(r.Domain);
                    break;
                case DeviceUnregistered u:
                    UnregisteredAt = u.UnregisteredAt;
                    break;
                case PushRequested p:
                    Pushes[p.PushId] = new PushExport(p.PushId, p.Domain, p.RequestedAt, "requested", null, null, null, null);
                    AddDomain(p.Domain);
                    break;
                case PushDelivered d:
                    Outcome(d.PushId, p => p with { Outcome = "delivered", OutcomeAt = d.DeliveredAt, LatencyMs = d.LatencyMs });
                    LastPushAt = Max(LastPushAt, d.DeliveredAt);
                    break;
                case PushFailed x:
                    Outcome(x.PushId, p => p with
                    {
                        Outcome = x.Transient ? "failed (transient)" : "failed",
                        Status = x.Status,
                        Reason = x.Reason,
                        OutcomeAt = x.FailedAt,
                    });
                    Error(x.FailedAt, x.Reason ?? x.Status.ToString(CultureInfo.InvariantCulture));
                    break;
                case TokenInvalidated i:
                    Outcome(i.PushId, p => p with { Outcome = "token invalid", Status = 410, Reason = i.Reason, OutcomeAt = i.InvalidatedAt });
                    InvalidatedAt = i.InvalidatedAt;
                    AppleTimestamp = i.AppleTimestamp;
                    Error(i.InvalidatedAt, i.Reason);
                    break;
                case TokenRejected j:
                    Outcome(j.PushId, p => p with { Outcome = "token rejected", Status = 400, Reason = j.Reason, OutcomeAt = j.RejectedAt });
                    RejectedAt = j.RejectedAt;
                    Error(j.RejectedAt, j.Reason);
                    break;
            }
        }

        private void AddToken(string encrypted)
        {
            EncryptedTokens.Remove(encrypted);
            EncryptedTokens.Add(encrypted);
        }

        private void AddDomain(string? domain)
        {
            if (!string.IsNullOrEmpty(domain))
            {
                Domains.Add(domain);
            }
        }

        private void Outcome(Guid pushId, Func<PushExport, PushExport> change)
        {
            if (Pushes.TryGetValue(pushId, out var push))
            {
                Pushes[pushId] = change(push);
            }
        }

        private void Error(DateTimeOffset at, string reason)
        {
            if (LastErrorAt is null || at >= LastErrorAt)
            {
                LastErrorAt = at;
                LastErrorReason = reason;
            }
        }

        private static DateTimeOffset? Max(DateTimeOffset? a, DateTimeOffset b) => a is null || b > a ? b : a;
    }
}
