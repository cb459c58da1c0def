using Monal.Push.Ingest.Stanzas;

namespace Monal.Push.Ingest.RequestingPush;

/// <summary>
/// Decides and records a publish (implemented by the ledger side). Called concurrently, many requests at once, without
/// waiting for earlier ones: group-commit them. An exception is answered with <c>wait</c>/<c>internal-server-error</c>.
/// </summary>
public interface IPublishHandler
{
    ValueTask<PublishOutcome> HandleAsync(PublishRequest request, CancellationToken ct);
}
