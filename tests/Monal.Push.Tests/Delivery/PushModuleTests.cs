using Monal.Push.Tests.Fixtures;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Delivery;
using Monal.Push.Delivery.Apns;
using Monal.Push.Delivery.PushModules;
using Monal.Push.Ledger.Crypto;
using Monal.Push.MockApns;

namespace Monal.Push.Tests.Delivery;

public sealed class PushModuleTests : IDisposable
{
    private readonly ProviderKeyFile _key = new();
    private readonly ManualClock _time = new();
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));

    private CancellationToken _ct => _timeout.Token;

    public void Dispose()
    {
        _timeout.Dispose();
        _key.Dispose();
    }

    private PushModuleOptions TokenModule(string? endpoint = null) => new()
    {
        Topic = "im.monal.test",
        TeamId = _key.TeamId,
        KeyId = _key.KeyId,
        KeyFile = _key.Path,
        Endpoint = endpoint,
    };

    private static PushModulesOptions Modules(params (string Name, PushModuleOptions Options)[] modules)
    {
        var options = new PushModulesOptions();
        foreach (var (name, module) in modules)
        {
            options.Modules[name] = module;
        }

        return options;
    }

    // AddPushModules as a host composes it: options bound from configuration, validated when first read.
    private static ServiceProvider PushModuleServices(IConfiguration configuration) =>
        new ServiceCollection().AddSingleton(configuration).AddSingleton(new KeyedHash(TestLedger.MasterKey))
            .AddLogging().AddPushModules().BuildServiceProvider();

    [Fact]
    public void AddPushModules_Should_BindEveryKey_When_ConfigurationUsesProductNames()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["PushModules:monalProdiOS:Topic"] = "im.monal.test",
            ["PushModules:monalProdiOS:TeamId"] = _key.TeamId,
            ["PushModules:monalProdiOS:KeyId"] = _key.KeyId,
            ["PushModules:monalProdiOS:KeyFile"] = _key.Path,
            ["PushModules:monalProdiOS-sandbox:Topic"] = "im.monal.test",
            ["PushModules:monalProdiOS-sandbox:Environment"] = "sandbox",
            ["PushModules:monalProdiOS-sandbox:Kind"] = "background",
            ["PushModules:monalProdiOS-sandbox:TeamId"] = _key.TeamId,
            ["PushModules:monalProdiOS-sandbox:KeyId"] = _key.KeyId,
            ["PushModules:monalProdiOS-sandbox:KeyFile"] = _key.Path,
            ["PushModules:monalProdiOS-sandbox:TimeToLive"] = "00:10:00",
            ["PushModules:monalProdiOS-sandbox:CollapseId"] = "monal",
            ["PushModules:monalProdiOS-sandbox:Endpoint"] = "http://127.0.0.1:9/",
        }).Build();
        using var services = PushModuleServices(configuration);

        var options = services.GetRequiredService<IOptions<PushModulesOptions>>().Value;
        var registry = services.GetRequiredService<PushModuleRegistry>();

        var production = options.Modules["monalProdiOS"];
        var sandbox = options.Modules["monalProdiOS-sandbox"];
        Assert.Equal(ApnsEnvironment.Production, production.Environment);
        Assert.Equal(PushModuleKind.Alert, production.Kind);
        Assert.Equal(TimeSpan.FromDays(1), production.TimeToLive);
        Assert.Equal(ApnsEndpoints.Production, production.ResolveEndpoint());
        Assert.Equal(ApnsEnvironment.Sandbox, sandbox.Environment);
        Assert.Equal(PushModuleKind.Background, sandbox.Kind);
        Assert.Equal(TimeSpan.FromMinutes(10), sandbox.TimeToLive);
        Assert.Equal("monal", sandbox.CollapseId);
        Assert.Equal(new Uri("http://127.0.0.1:9/"), sandbox.ResolveEndpoint());
        Assert.True(registry.TryGet("monalProdiOS", out var module));
        Assert.Equal("im.monal.test", module.Topic);
        Assert.True(registry.TryGet("monalProdiOS-sandbox", out _));
        Assert.False(registry.TryGet("monalAlpha", out _));
    }

    [Theory]
    [InlineData("monalProdiOS", "G7YU7X7KRJ.SworIM")]
    [InlineData("monalProdCatalyst", "org.monal-im.prod.catalyst.monal")]
    [InlineData("quicksyProdiOS", "org.monal-im.prod.ios.quicksy")]
    [InlineData("quicksyProdCatalyst", "org.monal-im.prod.catalyst.quicksy")]
    [InlineData("monalAlpha", "monal.alpha")]
    public void AddPushModules_Should_BindTheModuleAndItsSandboxTwin_When_TheShippedProductionSettingsAreLoaded(string name, string topic)
    {
        // The shipped file names /etc/monal-push/AuthKey_….p8; only the key path is replaced, so validation runs on
        // every other value as written.
        var shipped = Path.Combine(Ledger.SchemaMigratorTests.RepositoryRoot(), "deploy", "appsettings.Production.json");
        var file = new ConfigurationBuilder().AddJsonFile(shipped, optional: false).Build();
        var keyFiles = file.GetSection(PushModulesOptions.Section).GetChildren()
            .ToDictionary(m => $"{m.Path}:KeyFile", _ => (string?)_key.Path);
        var configuration = new ConfigurationBuilder().AddConfiguration(file).AddInMemoryCollection(keyFiles).Build();
        using var services = PushModuleServices(configuration);

        var options = services.GetRequiredService<IOptions<PushModulesOptions>>().Value;
        var registry = services.GetRequiredService<PushModuleRegistry>();

        Assert.Equal(10, options.Modules.Count);
        Assert.True(registry.TryGet(name, out var production));
        Assert.True(registry.TryGet(name + "-sandbox", out var sandbox));
        Assert.Equal((name, topic, ApnsEnvironment.Production), (production.Name, production.Topic, production.Environment));
        Assert.Equal((name + "-sandbox", topic, ApnsEnvironment.Sandbox), (sandbox.Name, sandbox.Topic, sandbox.Environment));
        Assert.Equal(ApnsEndpoints.Production, options.Modules[name].ResolveEndpoint());
        Assert.Equal(ApnsEndpoints.Sandbox, options.Modules[name + "-sandbox"].ResolveEndpoint());
        Assert.Equal("monalProdiOS", configuration["Ingest:DefaultPushModule"]);
    }

    [Fact]
    public void AddPushModules_Should_FailAtStart_When_AModuleIsInvalid()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["PushModules:broken:KeyFile"] = Path.Combine(_key.Directory, "missing.p8"),
        }).Build();
        using var services = PushModuleServices(configuration);

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<PushModulesOptions>>().Value);

        Assert.Contains(error.Failures, f => f.Contains("PushModules:broken:Topic", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("PushModules:broken:TeamId", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_Should_ReturnNoProblem_When_TokenModuleIsComplete() =>
        Assert.Empty(TokenModule().Validate("monalProdiOS"));

    [Fact]
    public void Validate_Should_NameEachProblem_When_ModuleIsMisconfigured()
    {
        var module = new PushModuleOptions
        {
            KeyFile = Path.Combine(_key.Directory, "missing.p8"),
            CertificateFile = "cert.p12",
            Endpoint = "ftp://example.org",
            TimeToLive = TimeSpan.FromSeconds(-1),
            CollapseId = new string('x', 65),
        };

        var problems = module.Validate("m");

        Assert.Contains(problems, p => p.Contains("PushModules:m:Topic is missing", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("both KeyFile and CertificateFile", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("PushModules:m:Endpoint", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("PushModules:m:TimeToLive", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("PushModules:m:CollapseId", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_Should_SayNoCredentials_When_NeitherKeyNorCertificateIsSet()
    {
        var problems = new PushModuleOptions { Topic = "im.monal.test" }.Validate("m");

        Assert.Contains(problems, p => p.Contains("has no credentials", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_Should_SayKeyIsUnreadable_When_KeyFileIsMissingOrNotAKey()
    {
        var missing = TokenModule();
        missing.KeyFile = Path.Combine(_key.Directory, "missing.p8");
        var publicOnly = TokenModule();
        publicOnly.KeyFile = _key.PublicKeyPath;

        Assert.Contains(missing.Validate("m"), p => p.Contains("KeyFile", StringComparison.Ordinal) && p.Contains("cannot be used", StringComparison.Ordinal));
        Assert.False(publicOnly.CanLoadCredentials(out var problem));
        Assert.Contains(_key.PublicKeyPath, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void CanLoadCredentials_Should_CheckThePassword_When_CertificateIsUsed()
    {
        var path = _key.WriteFile("push.p12", MockApnsCertificates.CreateClientPkcs12("CN=im.monal.test", "secret"));
        var good = new PushModuleOptions { Topic = "im.monal.test", CertificateFile = path, CertificatePassword = "secret" };
        var wrong = new PushModuleOptions { Topic = "im.monal.test", CertificateFile = path, CertificatePassword = "guess" };

        Assert.True(good.CanLoadCredentials(out _));
        Assert.Empty(good.Validate("m"));
        Assert.False(wrong.CanLoadCredentials(out var problem));
        Assert.Contains("wrong password", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Registry_Should_SharePoolsPerCredentialAndEndpoint_When_ModulesShareAKey()
    {
        var catalyst = TokenModule();
        catalyst.Topic = "im.monal.catalyst";
        var sandbox = TokenModule();
        sandbox.Environment = ApnsEnvironment.Sandbox;
        sandbox.Kind = PushModuleKind.Background;
        using var registry = new PushModuleRegistry(
            Modules(("monalProdiOS", TokenModule()), ("monalProdCatalyst", catalyst), ("monalProdiOS-sandbox", sandbox)), _time, NullLoggerFactory.Instance, null);

        Assert.True(registry.TryGet("monalProdiOS", out var ios));
        Assert.True(registry.TryGet("monalProdCatalyst", out var mac));
        Assert.True(registry.TryGet("monalProdiOS-sandbox", out var dev));
        Assert.Same(ios.Client, mac.Client);
        Assert.NotSame(ios.Client, dev.Client);
        Assert.Equal(ApnsEndpoints.Sandbox, dev.Client.Endpoint);
        Assert.Equal(3, registry.Modules.Count);
    }

    // Ingest accepts a publish by ConfiguredPushModules and stores the name as given; Delivery finds the device's module
    // by the registry. A name one accepts and the other does not is a push acknowledged and never sent (or the reverse).
    [Theory]
    [InlineData("monalProdiOS")]
    [InlineData("monalprodios")]
    [InlineData("MONALPRODIOS")]
    [InlineData("monalProdiOS ")]
    [InlineData("monalAlpha")]
    public void Registry_Should_KnowExactlyTheNamesIngestAccepts_When_ANameDiffersFromTheConfiguredOne(string name)
    {
        using var registry = new PushModuleRegistry(Modules(("monalProdiOS", TokenModule())), _time, NullLoggerFactory.Instance, null);
        var ingest = new Monal.Push.Ingest.Devices.ConfiguredPushModules(["monalProdiOS"]);

        Assert.Equal(ingest.Contains(name), registry.TryGet(name, out _));
    }

    [Fact]
    public void Registry_Should_Throw_When_OptionsAreInvalid()
    {
        var error = Assert.Throws<InvalidOperationException>(() =>
            new PushModuleRegistry(Modules(("m", new PushModuleOptions())), _time, NullLoggerFactory.Instance, null));

        Assert.Contains("PushModules:m:Topic", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CreateRequest_Should_UseMonalAlert_When_KindIsAlert()
    {
        using var registry = new PushModuleRegistry(Modules(("m", TokenModule())), _time, NullLoggerFactory.Instance, null);
        Assert.True(registry.TryGet("m", out var module));
        var id = Guid.NewGuid();

        var request = module.CreateRequest("00ff", id);

        Assert.Equal("""{"aps":{"alert":{"title":"New Message"},"mutable-content":1,"sound":"default"}}""", Encoding.UTF8.GetString(request.Payload.Span));
        Assert.Equal((ApnsPushType.Alert, ApnsPriority.Immediate, "im.monal.test", id, TimeSpan.FromDays(1)),
            (request.PushType, request.Priority, request.Topic, request.ApnsId, request.TimeToLive));
    }

    [Fact]
    public void CreateRequest_Should_UseSilentPushWithPriority5_When_KindIsBackground()
    {
        var options = TokenModule();
        options.Kind = PushModuleKind.Background;
        using var registry = new PushModuleRegistry(Modules(("m", options)), _time, NullLoggerFactory.Instance, null);
        Assert.True(registry.TryGet("m", out var module));

        var request = module.CreateRequest("00ff", Guid.NewGuid());

        Assert.Equal("""{"aps":{"content-available":1}}""", Encoding.UTF8.GetString(request.Payload.Span));
        Assert.Equal((ApnsPushType.Background, ApnsPriority.PowerConsiderate), (request.PushType, request.Priority));
    }

    [Fact]
    public void ApnsPayload_Should_Refuse_When_LargerThanApplesLimit()
    {
        Assert.Throws<ArgumentException>(() => ApnsPayload.Create(new byte[4097], ApnsPushType.Alert, ApnsPriority.Immediate));
        Assert.Equal(5120, ApnsPayload.Create(new byte[5120], ApnsPushType.Voip, ApnsPriority.Immediate).Utf8Json.Length);
        Assert.Throws<ArgumentException>(() => ApnsPayload.Create(new byte[5121], ApnsPushType.Voip, ApnsPriority.Immediate));
    }

    // The mock APNs over HTTP/2 without TLS, checking the provider tokens of the test key.
    private Task<MockApnsServer> StartH2cMockAsync() => MockApnsServer.StartAsync(new MockApnsOptions
    {
        UseTls = false,
        Topic = "im.monal.test",
        ProviderPublicKeyPem = _key.PublicKeyPem,
        KeyId = _key.KeyId,
        TeamId = _key.TeamId,
        TimeProvider = _time,
    }, _ct);

    [Fact]
    public async Task SendAsync_Should_PushThroughTheMock_When_ModuleUsesTokenAuthOverH2c()
    {
        await using var mock = await StartH2cMockAsync();
        using var registry = new PushModuleRegistry(Modules(("monalProdiOS", TokenModule(mock.Endpoint.ToString()))), _time, NullLoggerFactory.Instance, null);
        Assert.True(registry.TryGet("monalProdiOS", out var module));

        var response = await module.SendAsync(ApnsClientTests.NewToken(), Guid.NewGuid(), _ct);

        Assert.Equal(ApnsOutcome.Delivered, response.Outcome);
        Assert.True(Assert.Single(mock.Requests).ProviderToken!.SignatureValid);
    }

    [Fact]
    public async Task SendAsync_Should_LogOnlyTheKeyedHashOfTheToken_When_AppleRefusesIt()
    {
        await using var mock = await StartH2cMockAsync();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["PushModules:monalProdiOS:Topic"] = "im.monal.test",
            ["PushModules:monalProdiOS:TeamId"] = _key.TeamId,
            ["PushModules:monalProdiOS:KeyId"] = _key.KeyId,
            ["PushModules:monalProdiOS:KeyFile"] = _key.Path,
            ["PushModules:monalProdiOS:Endpoint"] = mock.Endpoint.ToString(),
        }).Build();
        var hash = new KeyedHash(TestLedger.MasterKey);
        var lines = new List<string>();
        using var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddSingleton<TimeProvider>(_time)
            .AddSingleton(hash)
            .AddLogging(l => l.SetMinimumLevel(LogLevel.Debug).AddProvider(new ListLoggerProvider(lines)))
            .AddPushModules()
            .BuildServiceProvider();
        Assert.True(services.GetRequiredService<PushModuleRegistry>().TryGet("monalProdiOS", out var module));
        var token = ApnsClientTests.NewToken();
        mock.RespondToNext(1, 410, "Unregistered", _time.GetUtcNow());

        var response = await module.SendAsync(token, Guid.NewGuid(), _ct);

        Assert.Equal(ApnsOutcome.TokenInvalidated, response.Outcome);
        var refused = Assert.Single(lines, l => l.Contains("refused token", StringComparison.Ordinal));
        Assert.Contains(hash.Redact(token), refused, StringComparison.Ordinal);
        var unkeyed = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(token))[..4]);
        Assert.All(lines, l =>
        {
            Assert.DoesNotContain(token, l, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(unkeyed, l, StringComparison.OrdinalIgnoreCase);
        });
    }

    private sealed class ListLoggerProvider(List<string> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new ListLogger(lines);

        public void Dispose()
        {
        }

        private sealed class ListLogger(List<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (lines)
                {
                    lines.Add(formatter(state, exception));
                }
            }
        }
    }

    [Fact]
    public async Task SendAsync_Should_AuthenticateWithTheClientCertificate_When_ModuleUsesCertificateAuth()
    {
        var path = _key.WriteFile("push.p12", MockApnsCertificates.CreateClientPkcs12("CN=Apple Push Services: im.monal.test", "secret"));
        using var expected = X509CertificateLoader.LoadPkcs12FromFile(path, "secret");
        await using var mock = await MockApnsServer.StartAsync(new MockApnsOptions
        {
            Topic = "im.monal.test",
            RequireClientCertificate = true,
            ClientCertificateValidator = c => c.Thumbprint == expected.Thumbprint,
            TimeProvider = _time,
        }, _ct);
        var options = new PushModuleOptions
        {
            Topic = "im.monal.test",
            CertificateFile = path,
            CertificatePassword = "secret",
            Endpoint = mock.Endpoint.ToString(),
        };
        using var registry = new PushModuleRegistry(
            Modules(("cert", options)), _time, NullLoggerFactory.Instance, o => o with { ServerCertificateValidation = mock.ServerCertificateValidation });
        Assert.True(registry.TryGet("cert", out var module));

        var response = await module.SendAsync(ApnsClientTests.NewToken(), Guid.NewGuid(), _ct);

        Assert.Equal(ApnsOutcome.Delivered, response.Outcome);
        var received = Assert.Single(mock.Requests);
        Assert.Equal(expected.Thumbprint, received.ClientCertificateThumbprint);
        Assert.Null(received.Header("authorization"));
    }
}
