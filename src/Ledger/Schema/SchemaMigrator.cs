using Microsoft.Extensions.Logging;
using Monal.Push.Ledger.EventStore;
using Npgsql;

namespace Monal.Push.Ledger.Schema;

/// <summary>
/// Applies ordered, forward-only SQL migrations, each in its own transaction, recorded with a checksum in
/// <c>schema_migrations</c>, under a session advisory lock so two processes starting together never race. An
/// applied file whose text changed is refused with <see cref="MigrationChecksumMismatchException"/>.
/// </summary>
public sealed class SchemaMigrator(NpgsqlDataSource dataSource, ILogger<SchemaMigrator> logger)
{
    // An arbitrary constant: "monalpsh" in ASCII.
    private const long LockKey = 0x6d6f6e616c707368;

    /// <summary>Applies what is missing; returns the names applied by this call (empty when up to date).</summary>
    public async Task<IReadOnlyList<string>> MigrateAsync(IReadOnlyList<Migration> migrations, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(migrations);
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await Exec(connection, $"select pg_advisory_lock({LockKey})", ct);
        try
        {
            await Exec(connection, """
                create table if not exists schema_migrations (
                    name       text        primary key,
                    checksum   text        not null,
                    applied_at timestamptz not null default now())
                """, ct);

            var applied = new Dictionary<string, string>(StringComparer.Ordinal);
            await using (var cmd = new NpgsqlCommand("select name, checksum from schema_migrations", connection))
            await using (var reader = await cmd.ExecuteReaderAsync(ct))
            {
                while (await reader.ReadAsync(ct))
                {
                    applied[reader.GetString(0)] = reader.GetString(1);
                }
            }

            var done = new List<string>();
            foreach (var m in migrations)
            {
                if (applied.TryGetValue(m.Name, out var checksum))
                {
                    if (checksum != m.Checksum)
                    {
                        throw new MigrationChecksumMismatchException(m.Name);
                    }

                    continue;
                }

                await using var tx = await connection.BeginTransactionAsync(ct);
                await using (var cmd = new NpgsqlCommand(m.Sql, connection, tx))
                {
                    await cmd.ExecuteNonQueryAsync(ct);
                }

                await using (var record = new NpgsqlCommand("insert into schema_migrations (name, checksum) values ($1, $2)", connection, tx))
                {
                    record.Parameters.Add(new() { Value = m.Name });
                    record.Parameters.Add(new() { Value = m.Checksum });
                    await record.ExecuteNonQueryAsync(ct);
                }

                await tx.CommitAsync(ct);
                Log.MigrationApplied(logger, m.Name);
                done.Add(m.Name);
            }

            return done;
        }
        finally
        {
            await Exec(connection, $"select pg_advisory_unlock({LockKey})", CancellationToken.None);
        }
    }

    /// <summary>Names of migrations that are not applied yet (for readiness checks and `doctor`).</summary>
    public async Task<IReadOnlyList<string>> PendingAsync(IReadOnlyList<Migration> migrations, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(migrations);
        await using var cmd = dataSource.CreateCommand(
            "select coalesce(array_agg(name), '{}') from schema_migrations");
        string[] applied;
        try
        {
            applied = (string[])(await cmd.ExecuteScalarAsync(ct))!;
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            applied = [];
        }

        return [.. migrations.Select(m => m.Name).Except(applied, StringComparer.Ordinal)];
    }

    private static async Task Exec(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
