using System.Collections.Frozen;
using System.Text.Json.Serialization.Metadata;

namespace Monal.Push.Ledger.Events;

/// <summary>
/// The stored name of every event type. Names are explicit and versioned and never the CLR name, so renaming a
/// class cannot orphan stored rows. Push events live in the day-partitioned table.
/// </summary>
public static class EventTypes
{
    private sealed record Entry(Type Type, string Name, bool IsPush, JsonTypeInfo Info);

    private static readonly Entry[] All =
    [
        new(typeof(DeviceRegistered), "device_registered.v1", false, LedgerJson.Default.DeviceRegistered),
        new(typeof(RegistrationRenewed), "registration_renewed.v1", false, LedgerJson.Default.RegistrationRenewed),
        new(typeof(DeviceUnregistered), "device_unregistered.v1", false, LedgerJson.Default.DeviceUnregistered),
        new(typeof(PushRequested), "push_requested.v1", true, LedgerJson.Default.PushRequested),
        new(typeof(PushDelivered), "push_delivered.v1", true, LedgerJson.Default.PushDelivered),
        new(typeof(PushFailed), "push_failed.v1", true, LedgerJson.Default.PushFailed),
        new(typeof(TokenInvalidated), "token_invalidated.v1", false, LedgerJson.Default.TokenInvalidated),
        new(typeof(TokenRejected), "token_rejected.v1", false, LedgerJson.Default.TokenRejected),
        new(typeof(RetentionRun), "retention_run.v1", false, LedgerJson.Default.RetentionRun),
        new(typeof(DeviceErased), "device_erased.v1", false, LedgerJson.Default.DeviceErased),
        new(typeof(SubjectAccessExported), "subject_access_exported.v1", false, LedgerJson.Default.SubjectAccessExported),
    ];

    private static readonly FrozenDictionary<Type, Entry> ByType = All.ToFrozenDictionary(e => e.Type);
    private static readonly FrozenDictionary<string, Entry> ByName = All.ToFrozenDictionary(e => e.Name, StringComparer.Ordinal);

    /// <summary>Stored names of the events kept in the day-partitioned push table.</summary>
    public static IReadOnlyList<string> PushEventNames { get; } = [.. All.Where(e => e.IsPush).Select(e => e.Name)];

    /// <summary>The stored name of an event type.</summary>
    public static string NameOf(Type type) => Get(type).Name;

    /// <summary>True when events of this type live in the partitioned push table (purged after the retention window).</summary>
    public static bool IsPushEvent(Type type) => Get(type).IsPush;

    /// <summary>Whether a stored name is known to this version of the code.</summary>
    public static bool IsKnown(string name) => ByName.ContainsKey(name);

    internal static byte[] Serialize(object data) => System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(data, Get(data.GetType()).Info);

    internal static object Deserialize(string name, ReadOnlySpan<byte> json) =>
        ByName.TryGetValue(name, out var entry)
            ? System.Text.Json.JsonSerializer.Deserialize(json, entry.Info)
              ?? throw new InvalidDataException($"Event of type '{name}' has null data.")
            : new UnknownEvent(name, System.Text.Encoding.UTF8.GetString(json));

    private static Entry Get(Type type) =>
        ByType.TryGetValue(type, out var entry)
            ? entry
            : throw new ArgumentException($"{type.Name} is not a registered event type; add it to EventTypes.", nameof(type));
}

/// <summary>An event whose stored name this version does not know (written by a newer version); kept, not dropped.</summary>
public sealed record UnknownEvent(string Name, string Json);
