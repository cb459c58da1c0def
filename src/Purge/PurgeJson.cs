using System.Text.Json.Serialization;
using Monal.Push.Purge.Auditing;
using Monal.Push.Purge.Exporting;

namespace Monal.Push.Purge;

/// <summary>Source-generated JSON for the documents Purge hands out: exports and audit reports.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UseStringEnumConverter = true,
    WriteIndented = true)]
[JsonSerializable(typeof(SubjectAccessExport))]
[JsonSerializable(typeof(RetentionReport))]
internal sealed partial class PurgeJson : JsonSerializerContext;
