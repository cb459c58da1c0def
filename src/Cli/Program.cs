using System.CommandLine;
using Monal.Push.Cli.Commands;

// On SIGINT/SIGTERM System.CommandLine cancels the verb's token and, by default, ends the process 2 seconds later
// whether or not the verb has finished. `serve` and `demo` need longer to stop in order (the host's graceful stop,
// then Prosody and the embedded PostgreSQL), or they would leave those processes behind.
return await MonalCommands.Build().Parse(args).InvokeAsync(new InvocationConfiguration
{
    ProcessTerminationTimeout = TimeSpan.FromSeconds(60),
});
