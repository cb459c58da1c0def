using System.Globalization;
using Monal.Push.Load.Listening;
using Monal.Push.Load.Publishing;
using Monal.Push.Load.Registering;
using Monal.Push.Load.Running;

// The XMPP server's side of XEP-0114, for load: listen on loopback, let `monal-push serve` connect as the component,
// register devices over HTTP, send publishes, print what came back. `./bench` (Monal.Push.Benchmarks e2e) drives the
// same classes with a full setup; this entry point is for one phase against a server you started yourself.
var options = ParseArgs(args);
if (options is null)
{
    Console.WriteLine("""
        usage: dotnet run -c Release --project tests/Monal.Push.Load -- --secret S [options]
          --port N               where to listen for the component (127.0.0.1; default 5347)
          --domain D             the component's domain (default push.localhost)
          --secret S             the component secret (required)
          --http URL             the server's HTTP API, to register devices (loopback only; without it: stateless only)
          --devices N            simulated devices (default 100000)
          --registered-share X   share of devices registered over HTTP (default 0.1 with --http)
          --rate R | --outstanding N   open loop at R publishes/s (default 1000) or closed loop with N outstanding
          --seconds S            phase length (default 20; hard cap 3600)
          --max-requests N       hard cap on publishes (default 10,000,000)
          --wait-seconds S       how long to wait for the component to connect (default 120)
        """);
    return 2;
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

using var server = new ComponentServer(options.Domain, options.Secret);
server.Start(options.Port);
Console.WriteLine($"listening for the component {options.Domain} on 127.0.0.1:{server.Port}");
using var waitForLink = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
waitForLink.CancelAfter(TimeSpan.FromSeconds(options.WaitSeconds));
var link = await server.AcceptAsync(waitForLink.Token);
Console.WriteLine("component connected and authenticated");

var devices = new DeviceSet(new LoadMix
{
    Devices = options.Devices,
    RegisteredDeviceShare = options.Http is null ? 0 : options.RegisteredShare,
});
if (options.Http is not null && devices.RegisteredCount > 0)
{
    var registration = await Registrar.RegisterAsync(options.Http, devices, 16, stop.Token);
    Console.WriteLine($"registered {registration.Registered:N0} devices in {registration.Elapsed.TotalSeconds:N1} s " +
                      $"({registration.PerSecond:N0}/s), {registration.Failed:N0} failed {registration.FirstError}");
}
else
{
    devices.Seal();
}

await using var runner = new LoadRunner(link, devices, options.Domain);
var duration = TimeSpan.FromSeconds(options.Seconds);
var phase = (options.Outstanding is { } n ? LoadPhase.Closed("closed", n, duration) : LoadPhase.Open("open", options.Rate, duration))
    with { MaxRequests = options.MaxRequests };
var result = await runner.RunAsync(phase, stop.Token);
Console.Write(PhaseReport.Describe(result));
if (runner.StrayReplies > 0 || runner.LateReplies > 0)
{
    Console.WriteLine($"  stray replies {runner.StrayReplies:N0}, late replies {runner.LateReplies:N0}");
}

return 0;

static LoadCommandLine? ParseArgs(string[] args)
{
    var o = new LoadCommandLine();
    for (var i = 0; i < args.Length; i++)
    {
        string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
        double Number() => double.Parse(Next(), CultureInfo.InvariantCulture);
        switch (args[i])
        {
            case "--port": o = o with { Port = (int)Number() }; break;
            case "--domain": o = o with { Domain = Next() }; break;
            case "--secret": o = o with { Secret = Next() }; break;
            case "--http": o = o with { Http = new Uri(Next().TrimEnd('/') + "/") }; break;
            case "--devices": o = o with { Devices = (int)Number() }; break;
            case "--registered-share": o = o with { RegisteredShare = Number() }; break;
            case "--rate": o = o with { Rate = Number(), Outstanding = null }; break;
            case "--outstanding": o = o with { Outstanding = (int)Number() }; break;
            case "--seconds": o = o with { Seconds = Math.Clamp(Number(), 0.1, 3600) }; break;
            case "--max-requests": o = o with { MaxRequests = (long)Number() }; break;
            case "--wait-seconds": o = o with { WaitSeconds = Math.Clamp(Number(), 1, 3600) }; break;
            default: return null;
        }
    }

    if (o.Http is not null)
    {
        Loopback.Require(o.Http);
    }

    return string.IsNullOrEmpty(o.Secret) ? null : o;
}

internal sealed record LoadCommandLine
{
    public int Port { get; init; } = 5347;

    public string Domain { get; init; } = "push.localhost";

    public string Secret { get; init; } = "";

    public Uri? Http { get; init; }

    public int Devices { get; init; } = 100_000;

    public double RegisteredShare { get; init; } = 0.1;

    public double Rate { get; init; } = 1000;

    public int? Outstanding { get; init; }

    public double Seconds { get; init; } = 20;

    public long MaxRequests { get; init; } = 10_000_000;

    public double WaitSeconds { get; init; } = 120;
}
