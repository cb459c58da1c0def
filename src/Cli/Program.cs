using System.CommandLine;
using Monal.Push.Cli.Commands;

// On SIGINT/SIGTERM System.CommandLine cancels the verb's token and, by default, ends the process 2 seconds later
// whether or not the verb has finished. `serve` and `demo` need longer to stop in order (the host's graceful stop,
// then Prosody and the embedded PostgreSQL), or they would leave those processes behind.
var parse = MonalCommands.Build().Parse(args);
var exitCode = await parse.InvokeAsync(new InvocationConfiguration
{
    ProcessTerminationTimeout = TimeSpan.FromSeconds(60),
});

// System.CommandLine prints a parse error with the usage and returns 1; scripts tell usage errors apart by 2, as the
// verbs' own checks do (docs/operators.md, "Exit codes").
return parse.Errors.Count > 0 ? ExitCodes.Usage : exitCode;
