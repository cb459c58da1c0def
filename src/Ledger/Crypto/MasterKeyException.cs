namespace Monal.Push.Ledger.Crypto;

/// <summary>
/// The master key cannot be used: it is malformed, or it is not the key this database was set up with (issue 19).
/// Bad configuration: `serve`, `migrate` and the admin verbs stop at start with this message, which names the fix.
/// </summary>
public sealed class MasterKeyException(string message, Exception? inner = null) : Exception(message, inner);
