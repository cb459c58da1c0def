using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Delivery.Apns;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Events;

namespace Monal.Push.Delivery.PushModules;

/// <summary>
/// Resolves the `pushModule` of a publish (e.g. monalProdiOS, monalProdiOS-sandbox) to a ready module.
/// Apple wants one long-lived connection pool per credential: modules with the same team and key id share one JWT
/// provider, and modules that also share the endpoint share one ApnsClient (topic is a per-request header).
/// </summary>
internal sealed class PushModuleRegistry : IDisposable
{
    private readonly Dictionary<string, PushModule> _modules = new(PushModuleNames.Comparer);
    private readonly List<IDisposable> _owned = [];

    public PushModuleRegistry(IOptions<PushModulesOptions> options, KeyedHash hash, TimeProvider time, ILoggerFactory loggerFactory)
        : this(options.Value, time, loggerFactory, configureClient: null, hash)
    {
    }

    // configureClient lets tests trust a mock's certificate or shorten timeouts. Logs name a token by its keyed hash
    // (KeyedHash.Redact), the same short form they use for devices; without a hash they name no token at all.
    public PushModuleRegistry(
        PushModulesOptions options,
        TimeProvider time,
        ILoggerFactory loggerFactory,
        Func<ApnsClientOptions, ApnsClientOptions>? configureClient,
        KeyedHash? hash = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new InvalidOperationException("Push modules are misconfigured:" + System.Environment.NewLine + string.Join(System.Environment.NewLine, problems));
        }

        var logger = loggerFactory.CreateLogger("Monal.Push.Delivery.Apns");
        var jwtProviders = new Dictionary<string, ApnsJwtProvider>(StringComparer.Ordinal);
        var certificates = new Dictionary<string, X509Certificate2>(StringComparer.Ordinal);
        var clients = new Dictionary<string, ApnsClient>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, module) in options.Modules)
            {
                var endpoint = module.ResolveEndpoint();
                ApnsJwtProvider? jwt = null;
                X509Certificate2? certificate = null;
                string credential;
                if (module.UsesToken)
                {
                    credential = $"key {module.TeamId}/{module.KeyId}";
                    if (!jwtProviders.TryGetValue(credential, out jwt))
                    {
                        jwt = ApnsJwtProvider.FromKeyFile(module.TeamId!, module.KeyId!, module.KeyFile!, time, logger);
                        jwtProviders.Add(credential, jwt);
                        _owned.Add(jwt);
                    }
                }
                else
                {
                    var path = Path.GetFullPath(module.CertificateFile!);
                    if (!certificates.TryGetValue(path, out certificate))
                    {
                        certificate = module.LoadCertificate();
                        certificates.Add(path, certificate);
                        _owned.Add(certificate);
                    }

                    credential = $"certificate {certificate.Thumbprint}";
                }

                var poolName = $"{credential} at {endpoint.Authority}";
                if (!clients.TryGetValue(poolName, out var client))
                {
                    var clientOptions = new ApnsClientOptions
                    {
                        Endpoint = endpoint,
                        JwtProvider = jwt,
                        ClientCertificate = certificate,
                        MaxConcurrentRequests = module.MaxConcurrentRequests,
                        RequestTimeout = module.RequestTimeout,
                        Name = poolName,
                    };
                    if (hash is not null)
                    {
                        clientOptions = clientOptions with { TokenRedactor = hash.Redact };
                    }

                    client = new ApnsClient(configureClient?.Invoke(clientOptions) ?? clientOptions, time, logger);
                    clients.Add(poolName, client);
                    _owned.Add(client);
                }

                var payload = module.Kind == PushModuleKind.Background ? ApnsPayload.Background : ApnsPayload.MonalAlert;
                _modules.Add(name, new PushModule(name, module.Topic!, module.Environment, module.Kind, payload, module.TimeToLive, module.CollapseId, client));
                var authentication = module.UsesToken ? "token" : "certificate";
                Log.PushModuleLoaded(logger, name, module.Topic!, module.Environment, authentication, module.Kind, endpoint);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IReadOnlyCollection<PushModule> Modules => _modules.Values;

    public bool TryGet(string name, [NotNullWhen(true)] out PushModule? module) => _modules.TryGetValue(name, out module);

    public void Dispose()
    {
        // Clients first: they use the providers and certificates.
        foreach (var owned in _owned.OfType<ApnsClient>())
        {
            owned.Dispose();
        }

        foreach (var owned in _owned.Where(o => o is not ApnsClient))
        {
            owned.Dispose();
        }

        _owned.Clear();
    }
}
