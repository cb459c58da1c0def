using Microsoft.Extensions.Options;

namespace Monal.Push.Delivery.Dispatching;

/// <summary>
/// Run at start (ValidateOnStart): every problem at once, each naming its configuration key.
/// </summary>
internal sealed class DeliveryOptionsValidator : IValidateOptions<DeliveryOptions>
{
    public ValidateOptionsResult Validate(string? name, DeliveryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Validate();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
