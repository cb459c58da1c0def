using System.Text;

namespace Monal.Push.Delivery.Apns;

/// <summary>
/// A pre-serialized payload with the push type and priority Apple requires for it (a background push must go with
/// priority 5, "Pushing background updates to your app"). Built once per module, sent as is.
/// </summary>
internal sealed class ApnsPayload
{
    private ApnsPayload(ReadOnlyMemory<byte> utf8Json, ApnsPushType pushType, ApnsPriority priority)
    {
        Utf8Json = utf8Json;
        PushType = pushType;
        Priority = priority;
    }

    // Monal's default: the Notification Service Extension (mutable-content) fetches the real messages; Apple only ever
    // sees this fixed text.
    public static ApnsPayload MonalAlert { get; } = Create(
        """{"aps":{"alert":{"title":"New Message"},"mutable-content":1,"sound":"default"}}""", ApnsPushType.Alert, ApnsPriority.Immediate);

    public static ApnsPayload Background { get; } = Create(
        """{"aps":{"content-available":1}}""", ApnsPushType.Background, ApnsPriority.PowerConsiderate);

    public ReadOnlyMemory<byte> Utf8Json { get; }

    public ApnsPushType PushType { get; }

    public ApnsPriority Priority { get; }

    public static ApnsPayload Create(string json, ApnsPushType pushType, ApnsPriority priority)
    {
        ArgumentException.ThrowIfNullOrEmpty(json);
        return Create(Encoding.UTF8.GetBytes(json), pushType, priority);
    }

    public static ApnsPayload Create(ReadOnlyMemory<byte> utf8Json, ApnsPushType pushType, ApnsPriority priority)
    {
        if (utf8Json.IsEmpty)
        {
            throw new ArgumentException("An APNs payload cannot be empty.", nameof(utf8Json));
        }

        if (utf8Json.Length > pushType.MaxPayloadBytes())
        {
            throw new ArgumentException(
                $"An APNs {pushType.ToHeaderValue()} payload may have at most {pushType.MaxPayloadBytes()} bytes; this one has {utf8Json.Length}.",
                nameof(utf8Json));
        }

        return new ApnsPayload(utf8Json, pushType, priority);
    }
}
