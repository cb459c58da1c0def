using System.Text.RegularExpressions;
using Monal.Push.Purge.KeepingLogFiles;
using Npgsql;

namespace Monal.Push.Purge.Auditing;

/// <summary>
/// Looks for personal data the policy says is never stored: user JIDs (local@domain), message bodies and senders
/// (the summary form's fields) and APNs tokens in clear, in the event tables (with any push-event day table an
/// interrupted purge left detached), the read models, the delivery queue and dead_tokens (each row read as text),
/// and in every log file: the server's, and the embedded PostgreSQL's. Findings name a table and key, or a file
/// and line, and never the data itself.
/// </summary>
/// <remarks>
/// The token rule: a run of 32 or more hex digits, once our ciphertexts ("v1:" and base64) are removed. The server
/// accepts tokens of 32 to 200 hex digits (ApnsToken), so every accepted token is such a run, and so is one glued
/// to other hex (a longer run). What else could match, and why it does not: UUIDs are written with dashes by
/// PostgreSQL and .NET alike (the longest dash-free run is 12 digits); our short hashes ("h:" and 10 digits),
/// PostgreSQL pids and timestamps are far shorter; base64 (ciphertexts, secret hashes) would need 32 hex-only
/// characters in a row, about (22/64)^32 = 1e-15 per position, and ciphertexts are removed first anyway. A UUID
/// written without dashes is 32 hex digits and is reported: it cannot be told from a 32-digit token, and our code
/// never writes one, so the finding is worth a look either way. Tables of keys and hashes (data_keys,
/// schema_migrations) are not scanned: they hold no token and would only match by design.
/// </remarks>
internal static partial class PersonalDataScanner
{
    private const int MaxFindingsPerCheck = 20;

    // PostgreSQL regular expressions (ARE); the ciphertexts are stripped before a row is tested.
    private const string JidSql = "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+";
    private const string HexSql = "[0-9A-Fa-f]{32,}";
    private const string BodySql = "\"(body|message_body|last_message_body|last-message-body|last_message_sender|last-message-sender|sender)\"[[:space:]]*:";
    private const string TokenDetail = "holds a run of 32 or more hex digits outside a ciphertext (an APNs token in clear)";

    [GeneratedRegex("[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+", RegexOptions.CultureInvariant)]
    private static partial Regex Jid();

    [GeneratedRegex("[0-9A-Fa-f]{32,}", RegexOptions.CultureInvariant)]
    private static partial Regex Hex();

    [GeneratedRegex("v1:[A-Za-z0-9+/=]+", RegexOptions.CultureInvariant)]
    private static partial Regex Ciphertext();

    [GeneratedRegex("last[-_]message[-_](body|sender)|<body[ >]", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex Body();

    private sealed record Target(string Table, string KeyExpression, string TextExpression, bool IsJson);

    public static async Task<long> ScanDatabaseAsync(
        NpgsqlDataSource dataSource, IEnumerable<string> detachedDayTables, List<AuditViolation> violations, CancellationToken ct)
    {
        var targets = new List<Target>
        {
            new("events", "'seq ' || seq || ' (' || type || ')'", "data::text", true),
            new("push_events", "'seq ' || seq || ' (' || type || ')'", "data::text", true),
        };
        targets.AddRange(detachedDayTables.Select(t => new Target(t, "'seq ' || seq || ' (' || type || ')'", "data::text", true)));
        foreach (var (table, key) in new[]
        {
            (ReadModelTables.Devices, "'device ' || t.device_id"),
            (ReadModelTables.PushLog, "'push ' || t.push_id"),
            (ReadModelTables.DomainUsage, "'day ' || t.day || ' domain ' || t.domain"),
            (ReadModelTables.ProjectionCheckpoints, "'projection ' || t.name"),
            (ReadModelTables.PushQueue, "'push ' || t.push_id"),
        })
        {
            targets.Add(new(table, key, "t::text", false));
        }

        foreach (var table in new[] { ReadModelTables.ThrottleState, ReadModelTables.DeadTokens })
        {
            if (await ReadModelTables.ExistsAsync(dataSource, table, ct))
            {
                targets.Add(new(table, "'device ' || t.device_id", "t::text", false));
            }
        }

        long rows = 0;
        foreach (var target in targets)
        {
            var from = target.IsJson ? target.Table : $"{target.Table} t";
            await using (var count = dataSource.CreateCommand($"select count(*) from {from}"))
            {
                rows += (long)(await count.ExecuteScalarAsync(ct))!;
            }

            var stripped = $"regexp_replace({target.TextExpression}, 'v1:[A-Za-z0-9+/=]+', '', 'g')";
            await CheckAsync(dataSource, target, from, $"{stripped} ~ $1", JidSql, "no user JIDs",
                "holds something shaped like a JID (local@domain)", violations, ct);
            await CheckAsync(dataSource, target, from, $"{stripped} ~ $1", HexSql, "no tokens in clear", TokenDetail, violations, ct);
            if (target.IsJson)
            {
                await CheckAsync(dataSource, target, from, $"{target.TextExpression} ~* $1", BodySql, "no message bodies or senders",
                    "holds a message body or sender field", violations, ct);
            }
        }

        return rows;
    }

    private static async Task CheckAsync(
        NpgsqlDataSource dataSource,
        Target target,
        string from,
        string condition,
        string pattern,
        string rule,
        string detail,
        List<AuditViolation> violations,
        CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            $"select {target.KeyExpression}, count(*) over () from {from} where {condition} limit {MaxFindingsPerCheck}");
        cmd.Parameters.Add(new() { Value = pattern });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            violations.Add(new AuditViolation(target.Table, rule, $"{target.Table}: {reader.GetString(0)}",
                $"{detail} ({reader.GetInt64(1)} row(s) in {target.Table})"));
        }
    }

    /// <summary>
    /// Scans every log file under the data folder: the server's (<c>logs/</c>), the embedded PostgreSQL's daily files
    /// (<c>postgres/log/</c>) and its startup log. Locations are relative to the data folder.
    /// </summary>
    public static async Task<(int Files, long Lines)> ScanLogFilesAsync(string dataPath, List<AuditViolation> violations, CancellationToken ct)
    {
        var files = new List<string>();
        foreach (var folder in new[] { LogFileNames.Folder(dataPath), LogFileNames.EmbeddedFolder(dataPath) })
        {
            if (Directory.Exists(folder))
            {
                files.AddRange(Directory.GetFiles(folder).Order(StringComparer.Ordinal));
            }
        }

        var startup = LogFileNames.EmbeddedStartupLog(dataPath);
        if (File.Exists(startup))
        {
            files.Add(startup);
        }

        long lines = 0;
        foreach (var file in files)
        {
            lines += await ScanLogFileAsync(file, Path.GetRelativePath(dataPath, file).Replace('\\', '/'), violations, ct);
        }

        return (files.Count, lines);
    }

    private static async Task<long> ScanLogFileAsync(string file, string name, List<AuditViolation> violations, CancellationToken ct)
    {
        var number = 0;
        var found = 0;
        await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            number++;
            if (found >= MaxFindingsPerCheck)
            {
                continue;
            }

            var stripped = Ciphertext().Replace(line, "");
            var location = $"{name} line {number}";
            if (Jid().IsMatch(stripped))
            {
                violations.Add(new("log files", "no user JIDs", location, "a line holds something shaped like a JID (local@domain)"));
                found++;
            }

            if (Hex().IsMatch(stripped))
            {
                violations.Add(new("log files", "no tokens in clear", location, "a line " + TokenDetail));
                found++;
            }

            if (Body().IsMatch(line))
            {
                violations.Add(new("log files", "no message bodies or senders", location, "a line holds a message body or sender field"));
                found++;
            }
        }

        return number;
    }
}
