using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Monal.Push.Ledger.Crypto;

/// <summary>
/// Proves at start that this node's master key is the database's (issue 19): the first node records the key check
/// value (<see cref="MasterKey.CheckValue"/>, migrations/0008) and every later start compares it. A node with another
/// key would not unwrap the data keys the other nodes made (their pushes lost) and would wrap keys they cannot read;
/// it is refused before it touches anything.
/// </summary>
public sealed class MasterKeyCheck(NpgsqlDataSource dataSource, MasterKey master, ILogger<MasterKeyCheck> logger)
{
    /// <summary>What a check found.</summary>
    public enum Outcome
    {
        /// <summary>The stored check value is this key's.</summary>
        Matched,

        /// <summary>No value was stored: this key's is now (it unwrapped the data keys already stored, if any).</summary>
        Recorded,

        /// <summary>The schema has no <c>master_key_check</c> yet (migrations not applied): nothing to compare.</summary>
        NotMigrated,
    }

    /// <summary>
    /// Compares this node's key with the database's, recording it when the database has none; throws
    /// <see cref="MasterKeyException"/> naming the fix when they differ.
    /// </summary>
    public async Task<Outcome> VerifyAsync(CancellationToken ct = default)
    {
        var mine = master.CheckValue();
        byte[]? stored;
        try
        {
            stored = await ReadAsync(ct);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return Outcome.NotMigrated;
        }

        var outcome = Outcome.Matched;
        if (stored is null)
        {
            // A database from before the check value (or whose first node stopped before recording it): the data keys
            // already there tell whose key it is. One that does not unwrap under this key means another key made it.
            await ProveOnStoredDataKeyAsync(ct);
            await using var insert = dataSource.CreateCommand(
                "insert into master_key_check (id, check_value) values (1, $1) on conflict (id) do nothing");
            insert.Parameters.Add(new() { Value = mine });
            await insert.ExecuteNonQueryAsync(ct);
            // Two first nodes starting together with different keys: the first insert wins and the other is refused.
            stored = await ReadAsync(ct);
            outcome = Outcome.Recorded;
        }

        if (stored is null || !CryptographicOperations.FixedTimeEquals(stored, mine))
        {
            throw Mismatch("its key check value differs from the one the database recorded when its first key was made");
        }

        if (outcome == Outcome.Recorded)
        {
            Log.MasterKeyRecorded(logger);
        }
        else
        {
            Log.MasterKeyMatched(logger);
        }

        return outcome;
    }

    private async Task<byte[]?> ReadAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select check_value from master_key_check where id = 1");
        return await cmd.ExecuteScalarAsync(ct) as byte[];
    }

    private async Task ProveOnStoredDataKeyAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select device_id, wrapped_key from data_keys limit 1");
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct))
        {
            return;
        }

        try
        {
            master.Unwrap(reader.GetGuid(0), reader.GetFieldValue<byte[]>(1));
        }
        catch (CryptographicException ex)
        {
            throw Mismatch("the device keys already stored in the database were wrapped by another master key", ex);
        }
    }

    private MasterKeyException Mismatch(string why, Exception? inner = null)
    {
        var created = master.CreatedNow
            ? $"No key file existed at {master.KeyFile}, so this start made a new key; "
            : "";
        var target = master.KeyFile is null
            ? "set Ledger:MasterKey to the key the other nodes use"
            : $"copy the key file of a node that runs on this database (its Ledger:MasterKeyFile, default Data:Path/master.key) to {master.KeyFile} (mode 0600), or set Ledger:MasterKeyFile to it";
        return new MasterKeyException(
            $"The master key ({master.Source}) is not the key of this database: {why}. {created}" +
            "This node could not decrypt the tokens the other nodes stored, and their pushes would be lost. " +
            $"Every node on one database must use the same master key: {target}, then start again; or, if this node was " +
            "meant for another database, correct ConnectionStrings:Ledger " +
            "(docs/operators.md, \"Running several nodes\"). Key rotation is not supported.", inner);
    }
}
