using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Cli.Commands;
using Monal.Push.Demo.Showing;
using Monal.Push.MockApns;
using Monal.Push.Projections.Daemon;
using Monal.Push.Ledger.Crypto;
using Npgsql;

namespace Monal.Push.Cli.Demonstrating;

/// <summary>
/// What `monal-push demo` shows on a running <see cref="DemoStack"/>: a device registers, its user enables push and
/// goes offline, another user writes, and the push arrives at the mock APNs and in the ledger's read models. Then
/// the walkthrough, and (unless <c>--once</c>) one more push per Enter until Ctrl-C.
/// </summary>
internal static class DemoRunner
{
    /// <summary>Printed before the walkthrough; tests look for it.</summary>
    public const string WalkthroughTitle = "What to try next";

    private static readonly TimeSpan PushTimeout = TimeSpan.FromSeconds(30);

    public static async Task RunAsync(DemoStack stack, bool once, TextWriter output, TextReader input, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stack);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(input);
        var prosody = stack.Prosody;
        var device = DemoDevice.Create();
        var conversation = new DemoConversation(prosody, stack.Alice, stack.Bob);

        output.WriteLine();
        output.WriteLine($"1. A device registers the way Monal before 5.2 does: POST /v1/register type=apns node={device.Node} token=<{TokenHash(stack, device)}>");
        var secret = await device.RegisterAsync(stack.Http, ct);
        output.WriteLine("   serve answered OK with a secret for the node (the ledger keeps it hashed, and encrypted with the device's key to hand it back on re-registration; the token encrypted).");

        output.WriteLine($"2. {stack.Alice.Jid(prosody)} enables push (XEP-0357) to {DemoStack.ComponentDomain} with that node and secret, then goes offline.");
        await conversation.EnablePushAndGoOfflineAsync(DemoStack.ComponentDomain, device.Node, secret, ct);

        output.WriteLine($"3. {stack.Bob.Jid(prosody)} sends alice a message; Prosody's mod_cloud_notify publishes to serve, serve pushes to APNs.");
        var request = await SendAndWaitForPushAsync(stack, conversation, device, after: 0, output, ct);

        output.WriteLine("4. The ledger: the read models `monal-push projections status` reports, and this device's rows.");
        await WriteLedgerAsync(stack, device, request, output, ct);

        WriteWalkthrough(stack, device, output);
        if (once)
        {
            return;
        }

        await RepeatOnEnterAsync(stack, conversation, device, request.Sequence, output, input, ct);
    }

    private static async Task<MockApnsRequest> SendAndWaitForPushAsync(
        DemoStack stack, DemoConversation conversation, DemoDevice device, int after, TextWriter output, CancellationToken ct)
    {
        var sent = Stopwatch.StartNew();
        var number = await conversation.SendMessageAsync(ct);
        while (sent.Elapsed < PushTimeout)
        {
            // Status is set once the mock has answered; the request is recorded just before.
            var request = stack.Apns.Requests.FirstOrDefault(r => r.Sequence > after && r.Status != 0
                && string.Equals(r.DeviceToken, device.Token, StringComparison.OrdinalIgnoreCase));
            if (request is not null)
            {
                WritePush(number, request, sent.Elapsed, TokenHash(stack, device), output);
                return request;
            }

            await Task.Delay(50, ct);
        }

        throw new DemoException(
            $"No push reached the mock APNs within {PushTimeout.TotalSeconds:F0} s of message {number}. serve's logs are in " +
            $"{Path.Combine(stack.DataPath, "logs")}, Prosody's in {stack.Prosody.LogFile}.");
    }

    private static void WritePush(int number, MockApnsRequest request, TimeSpan after, string tokenHash, TextWriter output)
    {
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"   push {number} reached the mock APNs {after.TotalSeconds:F2} s after the message:"));
        output.WriteLine($"     {request.Method} /3/device/<{tokenHash}>   (the token itself is never printed or logged)");
        output.WriteLine($"     apns-topic: {request.Header("apns-topic")}   apns-push-type: {request.Header("apns-push-type")}   " +
            $"apns-priority: {request.Header("apns-priority")}   apns-id: {request.Header("apns-id")}");
        var signature = request.ProviderToken?.SignatureValid == true ? "its provider token verified with the demo key" : "provider token not verified";
        output.WriteLine($"     the mock answered {request.Status}{(request.Reason is null ? "" : " " + request.Reason)} ({signature})");
    }

    // What serve's logs would call the token: its short keyed hash (KeyedHash.Redact), never the token itself.
    private static string TokenHash(DemoStack stack, DemoDevice device) =>
        stack.Host.Services.GetRequiredService<KeyedHash>().Redact(device.Token);

    private static async Task WriteLedgerAsync(DemoStack stack, DemoDevice device, MockApnsRequest request, TextWriter output, CancellationToken ct)
    {
        var dataSource = stack.Host.Services.GetRequiredService<NpgsqlDataSource>();
        var pushId = Guid.Parse(request.Header("apns-id")!);

        // push_log is folded by the async daemon and the device's last push by the delivery outcome: wait for both.
        var waited = Stopwatch.StartNew();
        string? pushRow = null;
        string? deviceRow = null;
        while (waited.Elapsed < PushTimeout && (pushRow is null || deviceRow is null))
        {
            pushRow = await PushLogRowAsync(dataSource, pushId, ct);
            deviceRow = await DeviceRowAsync(dataSource, device.Node, ct);
            if (pushRow is null || deviceRow is null)
            {
                await Task.Delay(100, ct);
            }
        }

        var rows = await stack.Host.Services.GetRequiredService<ProjectionStatus>().GetStatusAsync(ct);
        ProjectionsCommand.WriteStatus(output, rows, indent: "     ");
        output.WriteLine($"   devices row   {deviceRow ?? "(not there yet)"}");
        output.WriteLine($"   push_log row  {pushRow ?? "(not folded yet: see `projections status` for the daemon's lag)"}");
    }

    private static async Task<string?> DeviceRowAsync(NpgsqlDataSource dataSource, Guid node, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "select mode, push_module, registered_at, last_push_at, domains from devices where device_id = $1 and last_push_at is not null");
        cmd.Parameters.Add(new() { Value = node });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct))
        {
            return null;
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"device {node}  mode {reader.GetString(0)}  module {reader.GetString(1)}  registered {reader.GetFieldValue<DateTimeOffset>(2):u}  " +
            $"last push {reader.GetFieldValue<DateTimeOffset>(3):u}  domains {string.Join(',', reader.GetFieldValue<string[]>(4))}");
    }

    private static async Task<string?> PushLogRowAsync(NpgsqlDataSource dataSource, Guid pushId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "select domain, outcome, status, latency_ms from push_log where push_id = $1 and outcome <> 'pending'");
        cmd.Parameters.Add(new() { Value = pushId });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct))
        {
            return null;
        }

        var latency = reader.IsDBNull(3) ? "-" : reader.GetDouble(3).ToString("F1", CultureInfo.InvariantCulture) + " ms";
        return string.Create(CultureInfo.InvariantCulture,
            $"push {pushId}  domain {reader.GetString(0)}  outcome {reader.GetString(1)}  status {(reader.IsDBNull(2) ? "-" : reader.GetInt32(2))}  latency {latency}");
    }

    private static void WriteWalkthrough(DemoStack stack, DemoDevice device, TextWriter output)
    {
        var prosody = stack.Prosody;
        var http = stack.Host.HttpAddress.ToString().TrimEnd('/');
        var ledger = new NpgsqlConnectionStringBuilder(stack.ConnectionString);
        var connection = $"Host={ledger.Host};Port={ledger.Port};Username={ledger.Username};Password={ledger.Password};Database={ledger.Database}";
        output.WriteLine();
        output.WriteLine($"{WalkthroughTitle} (the stack keeps running; Ctrl-C stops serve, Prosody, the mock APNs and PostgreSQL):");
        output.WriteLine($"  * Press Enter: {stack.Bob.Name} writes to {stack.Alice.Name} again and you see the next push (serve sends at most one push");
        output.WriteLine("    per device per Throttle:Window, 5 s by default: a message sooner than that waits, and several coalesce into one).");
        output.WriteLine($"  * XMPP: Prosody on 127.0.0.1:{prosody.ClientPort}, domain {prosody.Domain}, plain-text c2s (no TLS: use a client that allows it).");
        output.WriteLine($"      {stack.Alice.Jid(prosody)} / {stack.Alice.Password}   push enabled for the demo device (stay offline to get pushes)");
        output.WriteLine($"      {stack.Bob.Jid(prosody)} / {stack.Bob.Password}   log in as bob and write to alice: every message pushes");
        output.WriteLine($"  * serve: curl -s {http}/health/ready ; curl -s {http}/metrics | grep '^monal_push_'");
        output.WriteLine($"      register another device: curl -s -d type=apns -d node=$(cat /proc/sys/kernel/random/uuid) -d token=$(openssl rand -hex 32) {http}/v1/register");
        output.WriteLine($"  * the ledger: ./monal-push projections status '--ConnectionStrings:Ledger={connection}' '--Data:Path={stack.DataPath}'");
        output.WriteLine($"      (likewise `audit retention`, `gdpr export --node {device.Node}`; psql 'postgresql://{ledger.Username}:{ledger.Password}@{ledger.Host}:{ledger.Port}/{ledger.Database}')");
        output.WriteLine($"  * logs: serve {Path.Combine(stack.DataPath, "logs")}, Prosody {prosody.LogFile}; mock APNs {stack.Apns.Endpoint} (h2c)");
    }

    private static async Task RepeatOnEnterAsync(DemoStack stack, DemoConversation conversation, DemoDevice device, int seen,
        TextWriter output, TextReader input, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            string? line;
            try
            {
                // Console.In reads synchronously even through ReadLineAsync, and no read takes a token: read on a
                // thread of its own and let Ctrl-C end the wait (the blocked read is abandoned at exit).
                line = await Task.Run(input.ReadLine, CancellationToken.None).WaitAsync(ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (line is null)
            {
                // No terminal (stdin closed): keep running until Ctrl-C or SIGTERM.
                await Task.Delay(Timeout.Infinite, ct).ContinueWith(_ => { }, TaskScheduler.Default);
                return;
            }

            try
            {
                var request = await SendAndWaitForPushAsync(stack, conversation, device, seen, output, ct);
                seen = request.Sequence;
            }
            catch (DemoException e)
            {
                output.WriteLine("   " + e.Message);
            }
        }
    }
}
