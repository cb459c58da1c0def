using Microsoft.Extensions.Options;

namespace Monal.Push.Delivery.PushModules;

/// <summary>
/// Run at start (ValidateOnStart): bad configuration is the one thing that stops the process.
/// </summary>
internal sealed class PushModulesOptionsValidator : IValidateOptions<PushModulesOptions>
{
    public ValidateOptionsResult Validate(string? name, PushModulesOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Validate();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
