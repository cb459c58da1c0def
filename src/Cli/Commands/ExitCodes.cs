namespace Monal.Push.Cli.Commands;

/// <summary>
/// The exit codes of the `monal-push` verbs, for scripts (the table per verb is in docs/operators.md, "Exit codes").
/// An unhandled failure (database unreachable, bad configuration) ends with System.CommandLine's 1 as well.
/// </summary>
internal static class ExitCodes
{
    /// <summary>Done; for `audit retention`: compliant.</summary>
    public const int Ok = 0;

    /// <summary>Failed; for `audit retention`: not compliant.</summary>
    public const int Failed = 1;

    /// <summary>The command line is wrong (a missing or contradictory option, an unknown value).</summary>
    public const int Usage = 2;

    /// <summary>`gdpr export|erase`: nothing is held about the device named.</summary>
    public const int NothingFound = 3;
}
