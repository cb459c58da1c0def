using System.CommandLine;
using Microsoft.Extensions.Options;
using Monal.Push.Cli.Commands;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Crypto;

// HttpClient's HTTP/2 connection rents a 4 KiB buffer for each request's headers from the shared array pool and holds it
// until the connection's writer has sent them. With a hundred requests to APNs in flight the pool (32 arrays of a size
// per core by default) runs dry and every further request allocates its own: 7 % of serve's allocations in first
// publishes at 5,000/s (docs/benchmarks.md, "Issue 16, twelfth pass"). The pool reads the variable once, at its first
// use, which is after this line; an operator's own value wins.
const string ArraysPerPartition = "DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION";
if (Environment.GetEnvironmentVariable(ArraysPerPartition) is null)
{
    Environment.SetEnvironmentVariable(ArraysPerPartition, "256");
}

// On SIGINT/SIGTERM System.CommandLine cancels the verb's token and, by default, ends the process 2 seconds later
// whether or not the verb has finished. `serve` and `demo` need longer to stop in order (the host's graceful stop,
// then Prosody and the embedded PostgreSQL), or they would leave those processes behind.
// Bad configuration (options validated at start, e.g. a retention period longer than the policy allows) is answered
// with its messages and exit code 2, not a stack trace; anything else as System.CommandLine's own handler would.
try
{
    var parse = MonalCommands.Build().Parse(args);
    var exitCode = await parse.InvokeAsync(new InvocationConfiguration
    {
        ProcessTerminationTimeout = TimeSpan.FromSeconds(60),
        EnableDefaultExceptionHandler = false,
    });

    // System.CommandLine prints a parse error with the usage and returns 1; scripts tell usage errors apart by 2, as
    // the verbs' own checks do (docs/operators.md, "Exit codes").
    return parse.Errors.Count > 0 ? ExitCodes.Usage : exitCode;
}
catch (OptionsValidationException ex)
{
    return await RefusedAsync([ex]);
}
catch (AggregateException ex) when (ex.InnerExceptions.All(e => e is OptionsValidationException))
{
    // The host validates every options type at start and throws them together when several are wrong.
    return await RefusedAsync(ex.InnerExceptions.Cast<OptionsValidationException>());
}
catch (Exception ex) when (Refusal(ex) is { } refusal)
{
    // Issue 19: a master key that is not the database's, or PostgreSQL out of connections. The message names the fix.
    await Console.Error.WriteLineAsync("monal-push: " + refusal.Message);
    return refusal is MasterKeyException ? 2 : 1;
}
catch (OperationCanceledException)
{
    return 1;
}
#pragma warning disable CA1031 // The last resort of the process: report and exit 1, as System.CommandLine's handler does.
catch (Exception ex)
#pragma warning restore CA1031
{
    await Console.Error.WriteLineAsync("Unhandled exception: " + ex);
    return 1;
}

static Exception? Refusal(Exception? ex) => ex switch
{
    null => null,
    MasterKeyException or ConnectionBudgetException => ex,
    AggregateException all => all.InnerExceptions.Select(Refusal).FirstOrDefault(r => r is not null),
    _ => Refusal(ex.InnerException),
};

static async Task<int> RefusedAsync(IEnumerable<OptionsValidationException> errors)
{
    await Console.Error.WriteLineAsync("monal-push: the configuration is refused:");
    foreach (var failure in errors.SelectMany(e => e.Failures))
    {
        await Console.Error.WriteLineAsync("  " + failure);
    }

    return 2;
}
