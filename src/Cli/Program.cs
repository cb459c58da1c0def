using Monal.Push.Cli.Commands;

return await MonalCommands.Build().Parse(args).InvokeAsync();
