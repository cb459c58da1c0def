using System.Text.Json.Serialization;
using Monal.Push.Ledger.EventStore;

namespace Monal.Push.Ledger.Events;

/// <summary>Source-generated JSON for every stored event (no reflection on the hot path).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true)]
[JsonSerializable(typeof(DeviceRegistered))]
[JsonSerializable(typeof(RegistrationRenewed))]
[JsonSerializable(typeof(DeviceUnregistered))]
[JsonSerializable(typeof(PushRequested))]
[JsonSerializable(typeof(PushDelivered))]
[JsonSerializable(typeof(PushFailed))]
[JsonSerializable(typeof(TokenInvalidated))]
[JsonSerializable(typeof(TokenRejected))]
[JsonSerializable(typeof(RetentionRun))]
[JsonSerializable(typeof(DeviceErased))]
[JsonSerializable(typeof(SubjectAccessExported))]
[JsonSerializable(typeof(EventMetadata))]
public sealed partial class LedgerJson : JsonSerializerContext;
