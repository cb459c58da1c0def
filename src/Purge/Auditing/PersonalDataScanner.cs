using System.Text.RegularExpressions;
using Monal.Push.Purge.KeepingLogFiles;
using Npgsql;

namespace Monal.Push.Purge.Auditing;

/// <summary>
/// Looks for personal data the policy says is never stored: user JIDs (local@domain), message bodies and senders
/// (the summary form's fields) and APNs tokens in clear (64 or more hex digits outside our "v1:" ciphertexts), in
/// the event tables, the read models and the delivery queue (each row read as text) and the log files. Findings
/// name a table and key, or a file and line, and never the data itself.
/// </summary>
internal static partial class PersonalDataScanner
{
    private const int MaxFindingsPerCheck = 20;

    // PostgreSQL regular expressions (ARE); the ciphertexts are stripped before a row is tested.
    private const string JidSql = "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+";
    private const string HexSql = "[0-9A-Fa-f]{64,}";
    private const string BodySql = "\"(body|message_body|last_message_body|last-message-body|last_message_sender|last-message-sender|sender)\"[[:space:]]*:";

    [GeneratedRegex("[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+", RegexOptions.CultureInvariant)]
    private static partial Regex Jid();

    [GeneratedRegex("[0-9A-Fa-f]{64,}", RegexOptions.CultureInvariant)]
    private static partial Regex Hex();

    [GeneratedRegex("v1:[A-Za-z0-9+/=]+", RegexOptions.CultureInvariant)]
    private static partial Regex Ciphertext();

    [GeneratedRegex("last[-_]message[-_](body|sender)|<body[ >]", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex Body();

    private sealed record Target(string Table, string KeyExpression, string TextExpression, bool IsJson);

    public static async Task<long> ScanDatabaseAsync(NpgsqlDataSource dataSource, List<AuditViolation> violations, CancellationToken ct)
    {
        var targets = new List<Target>
        {
            new("events", "'seq ' || seq || ' (' || type || ')'", "data::text", true),
            new("push_events", "'seq ' || seq || ' (' || type || ')'", "data::text", true),
        };
        foreach (var (table, key) in new[]
        {
            (ReadModelTables.Devices, "'device ' || t.device_id"),
            (ReadModelTables.PushLog, "'push ' || t.push_id"),
            (ReadModelTables.DomainUsage, "'day ' || t.day || ' domain ' || t.domain"),
            (ReadModelTables.DomainUsagePushes, "'push ' || t.push_id"),
            (ReadModelTables.ProjectionCheckpoints, "'projection ' || t.name"),
            (ReadModelTables.PushQueue, "'push ' || t.push_id"),
        })
        {
            targets.Add(new(table, key, "t::text", false));
        }

        if (await ReadModelTables.ExistsAsync(dataSource, ReadModelTables.ThrottleState, ct))
        {
            targets.Add(new(ReadModelTables.ThrottleState, "'device ' || t.device_id", "t::text", false));
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
            await CheckAsync(dataSource, target, from, $"{stripped} ~ $1", HexSql, "no tokens in clear",
                "holds 64 or more hex digits outside a ciphertext (an APNs token in clear)", violations, ct);
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

    public static async Task<(int Files, long Lines)> ScanLogFilesAsync(string dataPath, List<AuditViolation> violations, CancellationToken ct)
    {
        var folder = LogFileNames.Folder(dataPath);
        if (!Directory.Exists(folder))
        {
            return (0, 0);
        }

        var files = 0;
        long lines = 0;
        foreach (var file in Directory.GetFiles(folder).Order(StringComparer.Ordinal))
        {
            files++;
            var number = 0;
            var found = 0;
            var name = Path.GetFileName(file);
            await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                number++;
                lines++;
                if (found >= MaxFindingsPerCheck)
                {
                    continue;
                }

                var stripped = Ciphertext().Replace(line, "");
                var location = $"logs/{name} line {number}";
                if (Jid().IsMatch(stripped))
                {
                    violations.Add(new("log files", "no user JIDs", location, "a line holds something shaped like a JID (local@domain)"));
                    found++;
                }

                if (Hex().IsMatch(stripped))
                {
                    violations.Add(new("log files", "no tokens in clear", location, "a line holds 64 or more hex digits (an APNs token in clear)"));
                    found++;
                }

                if (Body().IsMatch(line))
                {
                    violations.Add(new("log files", "no message bodies or senders", location, "a line holds a message body or sender field"));
                    found++;
                }
            }
        }

        return (files, lines);
    }
}
