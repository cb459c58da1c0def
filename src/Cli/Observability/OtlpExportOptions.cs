using Microsoft.Extensions.Configuration;
using OpenTelemetry.Exporter;

namespace Monal.Push.Cli.Observability;

/// <summary>
/// Optional OTLP export of the metrics (section <c>Observability:Otlp</c>; docs/operators.md "Health, metrics,
/// logs"). Off unless <c>Endpoint</c> is set: without it no exporter is registered and nothing leaves the process.
/// </summary>
internal sealed class OtlpExportOptions
{
    public const string Section = "Observability:Otlp";

    /// <summary>
    /// The collector: <c>http://collector:4317</c> for gRPC, the full <c>…/v1/metrics</c> URL for HTTP/protobuf
    /// (the exporter appends no path to an endpoint given in configuration).
    /// </summary>
    public Uri Endpoint { get; init; } = null!;

    public OtlpExportProtocol Protocol { get; init; }

    public int ExportIntervalMilliseconds { get; init; }

    /// <summary>The options, null when no endpoint is configured; bad values stop the start (conventions.md section 5).</summary>
    public static OtlpExportOptions? From(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(Section);
        var endpoint = section["Endpoint"];
        if (string.IsNullOrWhiteSpace(endpoint))
        {
            return null;
        }

        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new InvalidOperationException($"{Section}:Endpoint must be an absolute http:// or https:// URL.");
        }

        var protocol = (section["Protocol"] ?? "grpc") switch
        {
            "grpc" => OtlpExportProtocol.Grpc,
            "http/protobuf" => OtlpExportProtocol.HttpProtobuf,
            var other => throw new InvalidOperationException($"{Section}:Protocol must be 'grpc' or 'http/protobuf', not '{other}'."),
        };
        var interval = section.GetValue("ExportIntervalSeconds", 60.0);
        if (interval is < 0.1 or > 86_400)
        {
            throw new InvalidOperationException($"{Section}:ExportIntervalSeconds must be between 0.1 and 86400.");
        }

        return new OtlpExportOptions { Endpoint = uri, Protocol = protocol, ExportIntervalMilliseconds = (int)(interval * 1000) };
    }
}
