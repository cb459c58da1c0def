namespace Monal.Push.Ingest.Registering;

/// <summary>
/// Registers and unregisters devices the way mod_push_appserver's v1 API does (implemented by the ledger side;
/// the XEP-0050 ad-hoc commands and the HTTP v1 endpoints both call it). <paramref name="fromDomain"/> is the
/// requester's domain only, never its JID.
/// </summary>
public interface IRegistrationHandler
{
    ValueTask<RegistrationResult> RegisterAsync(string type, string node, string token, string fromDomain, CancellationToken ct);

    ValueTask<RegistrationResult> UnregisterAsync(string type, string node, string fromDomain, CancellationToken ct);
}
