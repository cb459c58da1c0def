using System.Diagnostics;
using System.Net;
using Monal.Push.Load.Publishing;

namespace Monal.Push.Load.Registering;

/// <summary>
/// Registers the registered share of a <see cref="DeviceSet"/> the way older Monal versions do, over
/// mod_push_appserver's v1 API: <c>POST /v1/register</c> with type=apns, node=&lt;device UUID&gt;, token=&lt;hex&gt;,
/// answered <c>OK\n&lt;node&gt;\n&lt;secret&gt;</c>. A 503 is retried a few times; other refusals are counted.
/// </summary>
internal static class Registrar
{
    public sealed record Result(int Registered, int Failed, TimeSpan Elapsed, string? FirstError)
    {
        public double PerSecond => Elapsed.TotalSeconds > 0 ? Registered / Elapsed.TotalSeconds : 0;
    }

    public static async Task<Result> RegisterAsync(Uri baseAddress, DeviceSet devices, int concurrency, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(baseAddress);
        ArgumentNullException.ThrowIfNull(devices);
        Loopback.Require(baseAddress);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency })
        {
            BaseAddress = baseAddress,
            Timeout = TimeSpan.FromSeconds(30),
        };
        var failed = 0;
        string? firstError = null;
        var answers = new (string Node, string Secret)?[devices.RegisteredCount];
        var sw = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, devices.RegisteredCount),
            new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = ct },
            async (i, token) =>
            {
                for (var attempt = 0; ; attempt++)
                {
                    using var form = new FormUrlEncodedContent([
                        new("type", "apns"), new("node", devices.NodeOf(i).ToString("D")), new("token", devices.TokenOf(i))]);
                    using var response = await http.PostAsync("v1/register", form, token);
                    var body = await response.Content.ReadAsStringAsync(token);
                    if (response.StatusCode == HttpStatusCode.ServiceUnavailable && attempt < 5)
                    {
                        await Task.Delay(200 * (attempt + 1), token);
                        continue;
                    }

                    var lines = body.Split('\n');
                    if (response.IsSuccessStatusCode && lines.Length >= 3 && lines[0] == "OK")
                    {
                        answers[i] = (lines[1].Trim(), lines[2].Trim());
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                        Interlocked.CompareExchange(ref firstError, $"{(int)response.StatusCode} {lines[0]} {(lines.Length > 1 ? lines[1] : "")}", null);
                    }

                    return;
                }
            });
        var elapsed = sw.Elapsed;
        for (var i = 0; i < answers.Length; i++)
        {
            if (answers[i] is { } a)
            {
                devices.SetRegistered(i, a.Node, a.Secret);
            }
        }

        devices.Seal();
        return new Result(devices.UsableRegisteredCount, failed, elapsed, firstError);
    }
}
