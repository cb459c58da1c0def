using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Ledger.Embedded;
using Npgsql;

namespace Monal.Push.Tests.Ledger;

/// <summary>
/// The embedded cluster's own log is a server log too: one file per UTC day (which the log-file retention job
/// deletes) and nothing a client sent in it, even when its statements fail on a device's identifiers.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class EmbeddedPostgresLogTests
{
    [Fact]
    public async Task StartAsync_Should_LogToDailyFilesWithoutIdentifiers_When_StatementsFailOnThem()
    {
        var folder = Path.Combine(Path.GetTempPath(), "monal-test-" + Guid.NewGuid().ToString("N")[..8]);
        var device = Guid.NewGuid();
        var token = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        try
        {
            await using (var cluster = await EmbeddedPostgres.StartAsync(folder, NullLogger.Instance))
            {
                await using var connection = new NpgsqlConnection(cluster.ConnectionString());
                await connection.OpenAsync();
                foreach (var (setting, expected) in new[]
                {
                    ("logging_collector", "on"),
                    ("log_filename", "postgresql-%Y%m%d.log"),
                    ("log_timezone", "UTC"),
                    ("log_rotation_age", "1d"),
                    ("log_min_messages", "log"),
                    ("log_min_error_statement", "panic"),
                    ("log_error_verbosity", "terse"),
                    ("log_statement", "none"),
                    ("log_parameter_max_length", "0"),
                    ("log_parameter_max_length_on_error", "0"),
                })
                {
                    await using var show = new NpgsqlCommand($"show {setting}", connection);
                    Assert.Equal(expected, (string?)await show.ExecuteScalarAsync());
                }

                await using (var create = new NpgsqlCommand("create table probe (device_id uuid primary key)", connection))
                {
                    await create.ExecuteNonQueryAsync();
                }

                // A unique violation (its DETAIL quotes the key), a cast error (its message quotes the value), both
                // with the statement and a parameter that name the device.
                for (var i = 0; i < 2; i++)
                {
                    await using var insert = new NpgsqlCommand($"insert into probe values ('{device}') returning $1::text", connection);
                    insert.Parameters.Add(new() { Value = token });
                    if (i == 1)
                    {
                        await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync());
                    }
                    else
                    {
                        await insert.ExecuteNonQueryAsync();
                    }
                }

                await using (var cast = new NpgsqlCommand($"select '{token}'::uuid", connection))
                {
                    await Assert.ThrowsAsync<PostgresException>(() => cast.ExecuteScalarAsync());
                }

                await using (var checkpoint = new NpgsqlCommand("checkpoint", connection))
                {
                    await checkpoint.ExecuteNonQueryAsync();
                }

                Assert.Equal(Path.Combine(Path.GetFullPath(folder), EmbeddedPostgres.LogFolderName), cluster.LogDirectory);
            }

            var logFolder = Path.Combine(folder, EmbeddedPostgres.LogFolderName);
            var files = Directory.GetFiles(logFolder);
            Assert.NotEmpty(files);
            Assert.All(files, f => Assert.Matches(@"^postgresql-\d{8}\.log$", Path.GetFileName(f)));
            var text = string.Concat(files.Append(Path.Combine(folder, EmbeddedPostgres.StartupLogName)).Where(File.Exists).Select(File.ReadAllText));
            Assert.Contains("database system is ready to accept connections", text, StringComparison.Ordinal);
            Assert.DoesNotContain(device.ToString(), text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(token, text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("probe", text, StringComparison.Ordinal);
        }
        finally
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: the test run's sweep removes a folder left behind.
            }
        }
    }
}
