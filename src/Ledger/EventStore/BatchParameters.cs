using Npgsql;
using NpgsqlTypes;

namespace Monal.Push.Ledger.EventStore;

/// <summary>
/// Positional parameters of a batched statement, typed the way <c>unnest($n::type[])</c> reads them (as Marten's
/// operations add theirs): one call per parameter, the element type named once.
/// </summary>
public static class BatchParameters
{
    /// <summary>Adds <paramref name="values"/> as the next parameter, an array of <paramref name="elementType"/>.</summary>
    public static NpgsqlBatchCommand AddArray<T>(this NpgsqlBatchCommand command, T[] values, NpgsqlDbType elementType)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Parameters.Add(new NpgsqlParameter { Value = values, NpgsqlDbType = NpgsqlDbType.Array | elementType });
        return command;
    }

    /// <summary>Adds <paramref name="value"/> as the next parameter, of <paramref name="type"/>.</summary>
    public static NpgsqlBatchCommand AddValue<T>(this NpgsqlBatchCommand command, T value, NpgsqlDbType type)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Parameters.Add(new NpgsqlParameter { Value = value, NpgsqlDbType = type });
        return command;
    }
}
