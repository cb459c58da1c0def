using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Embedded;

namespace Monal.Push.Cli.Hosting;

/// <summary>What a host is built for: the whole pipeline, or one admin verb that needs the ledger only.</summary>
internal enum HostRole
{
    Serve,
    Admin,
}

/// <summary>
/// Builds the one host that `serve` and every admin verb use, with configuration from
/// appsettings.json (beside the executable, then in the working directory), environment variables and
/// command-line switches. Without ConnectionStrings:Ledger it starts the embedded PostgreSQL under Data:Path
/// first and stops it after the host.
/// </summary>
internal sealed class MonalHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly EmbeddedPostgres? _embedded;

    private MonalHost(WebApplication app, EmbeddedPostgres? embedded)
    {
        _app = app;
        _embedded = embedded;
    }

    public IServiceProvider Services => _app.Services;

    /// <summary>Where the HTTP listener ended up (Http:Urls may ask for port 0).</summary>
    public Uri HttpAddress => new(_app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
        .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First());

    public static async Task<MonalHost> StartAsync(
        IReadOnlyList<string> switches, HostRole role, CancellationToken ct, Action<IServiceCollection>? overrides = null)
    {
        var args = switches.ToArray();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            // No reload on change: watching appsettings.json puts a recursive watcher on the whole working
            // directory (costly when it is /tmp or a home folder), and a running server re-reads nothing anyway.
            Args = [.. args, "--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = Directory.GetCurrentDirectory(),
        });
        ConfigureSources(builder.Configuration, args);
        builder.Logging.ClearProviders();
        AddConsoleLog(builder.Logging);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        // Npgsql logs every command at Information; its text could carry parameters of a failed statement.
        builder.Logging.AddFilter("Npgsql", LogLevel.Warning);
        builder.Logging.AddFilter("Quartz", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);

        EmbeddedPostgres? embedded = null;
        if (string.IsNullOrWhiteSpace(builder.Configuration.GetConnectionString("Ledger")))
        {
            var data = builder.Configuration["Data:Path"] ?? "var";
            using var bootLogging = LoggerFactory.Create(AddConsoleLog);
            embedded = await EmbeddedPostgres.StartAsync(EmbeddedPostgres.ClusterFolder(data), bootLogging.CreateLogger("Monal.Push.Embedded"), ct);
            builder.Configuration.AddInMemoryCollection([new("ConnectionStrings:Ledger", embedded.ConnectionString())]);
        }

        try
        {
            if (role == HostRole.Admin)
            {
                // An admin verb runs its command through the same services, but never the background stages.
                builder.Configuration.AddInMemoryCollection([
                    new("Retention:Scheduler", "false"), new("Projections:RunDaemon", "false"), new("Ledger:WaitForDatabase", "false")]);
            }

            // Tests put their own services (a clock they move) in first; the stages only TryAdd defaults.
            overrides?.Invoke(builder.Services);
            builder.Services.AddLedger(builder.Configuration);
            StageComposition.AddSharedServices(builder.Services, builder.Configuration);
            if (role == HostRole.Serve)
            {
                StageComposition.AddStages(builder.Services, builder.Configuration);
                builder.WebHost.UseUrls((builder.Configuration["Http:Urls"] ?? "http://127.0.0.1:5280").Split(';'));
            }
            else
            {
                // Admin verbs share the host but not the pipeline: no listener, no background stages.
                builder.WebHost.UseUrls("http://127.0.0.1:0");
                builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
            }

            var app = builder.Build();
            if (role == HostRole.Serve)
            {
                StageComposition.MapEndpoints(app);
            }

            await app.StartAsync(ct);
            return new MonalHost(app, embedded);
        }
        catch
        {
            if (embedded is not null)
            {
                await embedded.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>
    /// One line per message, on standard error at every level: standard output belongs to the verb's result (an
    /// audit report, a GDPR export), so `monal-push audit retention --format json &gt; report.json` writes only JSON.
    /// journald collects both streams of `serve` alike.
    /// </summary>
    private static void AddConsoleLog(ILoggingBuilder logging)
    {
        logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.UseUtcTimestamp = true;
        });
        logging.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    }

    internal static void ConfigureSources(ConfigurationManager configuration, string[] args, bool includeWorkingDirectoryFile = false)
    {
        if (includeWorkingDirectoryFile)
        {
            // A bare ConfigurationManager (doctor) lacks what the web builder adds: the operator's appsettings.json.
            configuration.AddJsonFile(Path.GetFullPath("appsettings.json"), optional: true);
        }

        // Defaults shipped beside the executable come first; the operator's file, the environment and the command
        // line override them, in that order.
        var shipped = Path.Combine(AppContext.BaseDirectory, "appsettings.json");
        var sources = configuration.Sources;
        if (File.Exists(shipped) && Path.GetFullPath(shipped) != Path.GetFullPath("appsettings.json"))
        {
            sources.Insert(0, new Microsoft.Extensions.Configuration.Json.JsonConfigurationSource
            {
                Path = shipped,
                Optional = true,
                FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(AppContext.BaseDirectory),
            });
        }

        configuration.AddEnvironmentVariables();
        configuration.AddCommandLine(args);
    }

    public Task WaitForShutdownAsync(CancellationToken ct) => _app.WaitForShutdownAsync(ct);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        if (_embedded is not null)
        {
            await _embedded.DisposeAsync();
        }
    }
}
