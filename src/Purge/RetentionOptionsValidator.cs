using System.Globalization;
using Microsoft.Extensions.Options;

namespace Monal.Push.Purge;

/// <summary>
/// The privacy policy's limits are a maximum: push logs and server log files are deleted after 14 days, so a longer
/// Retention:PushLog or Retention:LogFiles stops `serve`, `migrate` and every admin verb at start (ValidateOnStart),
/// with the key and the maximum named. A shorter period is allowed (docs/operators.md, configuration).
/// </summary>
internal sealed class RetentionOptionsValidator : IValidateOptions<RetentionOptions>
{
    /// <summary>The policy's period for push logs and server logs.</summary>
    public static readonly TimeSpan PolicyMaximum = TimeSpan.FromDays(14);

    public ValidateOptionsResult Validate(string? name, RetentionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        Period(failures, "Retention:PushLog", options.PushLog);
        Period(failures, "Retention:LogFiles", options.LogFiles);
        if (options.PurgeInterval < TimeSpan.FromSeconds(1) || options.InvalidTokenInterval < TimeSpan.FromSeconds(1))
        {
            failures.Add("Retention:PurgeInterval and Retention:InvalidTokenInterval must be at least one second.");
        }

        if (options.BatchSize <= 0)
        {
            failures.Add("Retention:BatchSize must be positive.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Period(List<string> failures, string key, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            failures.Add($"{key} must be positive.");
        }
        else if (value > PolicyMaximum)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{key} is {value:c}, longer than the privacy policy allows: at most {PolicyMaximum:c} (14 days). Set a period of 14 days or less."));
        }
    }
}
