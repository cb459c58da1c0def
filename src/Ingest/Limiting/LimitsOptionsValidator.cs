using Microsoft.Extensions.Options;

namespace Monal.Push.Ingest.Limiting;

/// <summary>Refuses unusable <c>Limits</c> at start, each problem naming its key (conventions.md section 6).</summary>
internal sealed class LimitsOptionsValidator : IValidateOptions<LimitsOptions>
{
    public ValidateOptionsResult Validate(string? name, LimitsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Problems();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
