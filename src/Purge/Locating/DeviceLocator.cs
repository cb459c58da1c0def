using System.Security.Cryptography;
using Microsoft.Extensions.Configuration;
using Monal.Push.Ledger.Crypto;
using Npgsql;

namespace Monal.Push.Purge.Locating;

/// <summary>
/// Finds the device UUIDs a GDPR request is about. A stateless device's UUID is derived from push module and token
/// (KeyedHash.StatelessDeviceId), so a token is tried with every configured push module (PushModules:&lt;name&gt;)
/// and every module the ledger has seen; a registered device holds its token encrypted, so registered devices'
/// tokens are decrypted with their data keys and compared.
/// </summary>
public sealed class DeviceLocator(NpgsqlDataSource dataSource, KeyedHash keyedHash, DataKeys dataKeys, IConfiguration configuration)
{
    /// <summary>The device UUIDs the query names that hold anything (empty when nothing is held).</summary>
    public async Task<IReadOnlyList<Guid>> LocateAsync(SubjectQuery query, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (query.Kind != "node" || !Guid.TryParse(query.Value, out var node))
        {
            return await ByTokenAsync(query.Value, ct);
        }

        var found = await IsHeldAsync(node, ct) ? new List<Guid> { node } : [];
        if (query.IsHex)
        {
            // 32 hex digits parse as a UUID but are also the shape of a 16-byte token: look for both.
            found.AddRange((await ByTokenAsync(query.Value, ct)).Where(id => id != node));
        }

        return found;
    }

    private async Task<IReadOnlyList<Guid>> ByTokenAsync(string token, CancellationToken ct)
    {
        var found = new List<Guid>();
        var modules = new SortedSet<string>(configuration.GetSection("PushModules").GetChildren().Select(c => c.Key), StringComparer.Ordinal);
        await using (var cmd = dataSource.CreateCommand(
            "select distinct data->>'push_module' from events where type in ('device_registered.v1', 'registration_renewed.v1')"))
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                if (!reader.IsDBNull(0))
                {
                    modules.Add(reader.GetString(0));
                }
            }
        }

        foreach (var module in modules)
        {
            var id = keyedHash.StatelessDeviceId(module, token);
            if (!found.Contains(id) && await IsHeldAsync(id, ct))
            {
                found.Add(id);
            }
        }

        foreach (var (deviceId, encrypted) in await EncryptedTokensAsync(ct))
        {
            if (found.Contains(deviceId))
            {
                continue;
            }

            try
            {
                // Ingest stores tokens in lower case; compare ignoring case all the same, as the query does.
                var clear = await dataKeys.DecryptAsync(deviceId, encrypted, ct);
                if (CryptographicOperations.FixedTimeEquals(
                        System.Text.Encoding.UTF8.GetBytes(clear.ToLowerInvariant()),
                        System.Text.Encoding.UTF8.GetBytes(token.ToLowerInvariant())))
                {
                    found.Add(deviceId);
                }
            }
            catch (CryptographicException)
            {
                // Shredded or unreadable: that token is erased and cannot match.
            }
        }

        return found;
    }

    private async Task<List<(Guid DeviceId, string Encrypted)>> EncryptedTokensAsync(CancellationToken ct)
    {
        // The events hold every token the device ever registered with; the devices row its current one (cleared
        // when Apple declares it invalid).
        const string sql = """
            select stream_id, data->>'encrypted_token' from events
            where type in ('device_registered.v1', 'registration_renewed.v1') and data->>'encrypted_token' is not null
            union
            select device_id, encrypted_token from devices where encrypted_token is not null
            """;
        var list = new List<(Guid, string)>();
        await using var cmd = dataSource.CreateCommand(sql);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            list.Add((reader.GetGuid(0), reader.GetString(1)));
        }

        return list;
    }

    /// <summary>
    /// Whether anything about the device is held: its stream, its key, a read-model row, a queued push, or the keyed id
    /// of its dead token (a stateless device erased after Apple declared its token invalid).
    /// </summary>
    public async Task<bool> IsHeldAsync(Guid deviceId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            select exists(select 1 from streams where id = $1)
                or exists(select 1 from data_keys where device_id = $1)
                or exists(select 1 from devices where device_id = $1)
                or exists(select 1 from push_log where device_id = $1)
                or exists(select 1 from push_queue where device_id = $1)
                or exists(select 1 from dead_tokens where device_id = $1)
            """);
        cmd.Parameters.Add(new() { Value = deviceId });
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
