using System.Globalization;
using Monal.Push.MockApns;

// Standalone mock for benchmarks:
// dotnet run --project tests/Monal.Push.MockApns -- --port 8443 [--h2c] [--latency-ms N] [--unregistered-share 0.01]
//     [--key-file pub.pem] [--topic T] [--max-streams N]
var port = 8443;
var h2c = false;
var latency = TimeSpan.Zero;
var unregisteredShare = 0.0;
string? keyPem = null;
string? topic = null;
var maxStreams = 100;
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
    switch (args[i])
    {
        case "--port": port = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--h2c": h2c = true; break;
        case "--latency-ms": latency = TimeSpan.FromMilliseconds(double.Parse(Next(), CultureInfo.InvariantCulture)); break;
        case "--unregistered-share": unregisteredShare = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--key-file": keyPem = File.ReadAllText(Next()); break;
        case "--topic": topic = Next(); break;
        case "--max-streams": maxStreams = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        default:
            await Console.Error.WriteLineAsync($"Unknown argument {args[i]}");
            return 2;
    }
}

await using var server = await MockApnsServer.StartAsync(new MockApnsOptions
{
    Port = port,
    UseTls = !h2c,
    Latency = latency,
    UnregisteredShare = unregisteredShare,
    ProviderPublicKeyPem = keyPem,
    Topic = topic,
    MaxStreamsPerConnection = maxStreams,
    RecordRequests = false,
});
Console.WriteLine($"Mock APNs listening on {server.Endpoint} ({(h2c ? "h2c" : "TLS, self-signed")}); Ctrl+C stops it.");
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
    // Ctrl+C.
}

Console.WriteLine($"Served {server.RequestCount} requests, at most {server.MaxConcurrentRequests} at once.");
return 0;
