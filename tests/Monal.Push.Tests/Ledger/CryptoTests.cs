using System.Text;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ledger;

public sealed class CryptoTests
{
    private const string Token = "3c5a0b7e9f4d2c1a8b6e0f3d5c7a9b1e2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c";

    [Fact]
    [Trait("Category", "Postgres")]
    public async Task EncryptAsync_Should_RoundTripWithoutRevealingTheToken_When_KeyExists()
    {
        var keys = new DataKeys(await TestDatabase.DataSourceAsync(), TestLedger.MasterKey, TimeProvider.System);
        var device = Guid.CreateVersion7();

        var sealedToken = await keys.EncryptAsync(device, Token);

        Assert.StartsWith("v1:", sealedToken, StringComparison.Ordinal);
        Assert.DoesNotContain(Token, sealedToken, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Token, Encoding.UTF8.GetString(Convert.FromBase64String(sealedToken[3..])), StringComparison.OrdinalIgnoreCase);
        Assert.NotEqual(sealedToken, await keys.EncryptAsync(device, Token)); // fresh nonce each time
        Assert.Equal(Token, await keys.DecryptAsync(device, sealedToken));
    }

    [Fact]
    [Trait("Category", "Postgres")]
    public async Task DecryptAsync_Should_Fail_When_TheKeyWasShreddedElsewhere()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        var here = new DataKeys(dataSource, TestLedger.MasterKey, TimeProvider.System);
        var there = new DataKeys(dataSource, TestLedger.MasterKey, TimeProvider.System);
        var device = Guid.CreateVersion7();
        var sealedToken = await here.EncryptAsync(device, Token);

        Assert.True(await there.DeleteAsync(device));

        await Assert.ThrowsAsync<DataKeyShreddedException>(() => there.DecryptAsync(device, sealedToken));
        here.Forget(device);
        await Assert.ThrowsAsync<DataKeyShreddedException>(() => here.DecryptAsync(device, sealedToken));
    }

    [Fact]
    [Trait("Category", "Postgres")]
    public async Task DecryptAsync_Should_Fail_When_CiphertextBelongsToAnotherDevice()
    {
        var keys = new DataKeys(await TestDatabase.DataSourceAsync(), TestLedger.MasterKey, TimeProvider.System);
        var a = Guid.CreateVersion7();
        var b = Guid.CreateVersion7();
        await keys.EncryptAsync(b, "x");

        var sealedForA = await keys.EncryptAsync(a, Token);

        await Assert.ThrowsAnyAsync<System.Security.Cryptography.CryptographicException>(() => keys.DecryptAsync(b, sealedForA));
    }

    [Fact]
    [Trait("Category", "Postgres")]
    public async Task EncryptAsync_Should_CreateOneKeyPerDeviceThatEveryNodeReads_When_ManyDevicesAreFirstSeenAtOnce()
    {
        // Concurrent first uses gather into shared statements (more devices than one statement takes), on two nodes at
        // once, some devices on both: each device ends with one key, and whatever either node sealed, a third reads.
        var dataSource = await TestDatabase.DataSourceAsync();
        var here = new DataKeys(dataSource, TestLedger.MasterKey, TimeProvider.System);
        var there = new DataKeys(dataSource, TestLedger.MasterKey, TimeProvider.System);
        var devices = Enumerable.Range(0, DataKeys.MaxKeysPerStatement + 44).Select(_ => Guid.CreateVersion7()).ToArray();

        var sealedTokens = await Task.WhenAll(devices.SelectMany((d, i) => (i % 3 == 0 ? new[] { here, there, here } : [here])
            .Select(async keys => (Device: d, Sealed: await keys.EncryptAsync(d, Token + i), Plain: Token + i))));

        await using (var count = dataSource.CreateCommand("select count(*), count(distinct device_id), max(generation) from data_keys where device_id = any($1)"))
        {
            count.Parameters.Add(new() { Value = devices });
            await using var reader = await count.ExecuteReaderAsync();
            await reader.ReadAsync();
            Assert.Equal(devices.Length, reader.GetInt64(0));
            Assert.Equal(devices.Length, reader.GetInt64(1));
            Assert.Equal(1, reader.GetInt32(2));
        }

        Assert.InRange(here.CreatingStatements, 2, devices.Length / 2); // one a call would be up to 400
        var reading = new DataKeys(dataSource, TestLedger.MasterKey, TimeProvider.System);
        foreach (var (device, sealedToken, plain) in sealedTokens)
        {
            Assert.Equal(plain, await reading.DecryptAsync(device, sealedToken));
            Assert.Equal(plain, await here.DecryptAsync(device, sealedToken));
            Assert.Equal(plain, await there.DecryptAsync(device, sealedToken));
        }
    }

    [Fact]
    [Trait("Category", "Postgres")]
    public async Task EncryptAsync_Should_FailEveryCallAndThenRecover_When_TheDatabaseIsUnreachable()
    {
        var unreachable = Npgsql.NpgsqlDataSource.Create("Host=127.0.0.1;Port=1;Username=x;Password=x;Timeout=2");
        var keys = new DataKeys(unreachable, TestLedger.MasterKey, TimeProvider.System);

        // Every waiting caller hears the failure, and the next ones are tried afresh (none waits for a dead batch).
        var failed = await Task.WhenAll(Enumerable.Range(0, 5).Select(async _ =>
            await Record.ExceptionAsync(() => keys.EncryptAsync(Guid.CreateVersion7(), Token))));
        Assert.All(failed, e => Assert.IsType<Npgsql.NpgsqlException>(e, exactMatch: false));
        Assert.IsType<Npgsql.NpgsqlException>(await Record.ExceptionAsync(() => keys.EncryptAsync(Guid.CreateVersion7(), Token)), exactMatch: false);
    }

    [Fact]
    [Trait("Category", "Postgres")]
    public async Task EncryptAsync_Should_KeepTheCacheBoundedAndEveryTokenReadable_When_MoreDevicesThanTheBoundAreSeen()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        var keys = new DataKeys(dataSource, TestLedger.MasterKey, TimeProvider.System, maxCachedKeys: 10);
        var sealedTokens = new List<(Guid Device, string Sealed)>();
        for (var i = 0; i < 35; i++)
        {
            var device = Guid.CreateVersion7();
            sealedTokens.Add((device, await keys.EncryptAsync(device, Token + i)));
            Assert.InRange(keys.CachedKeys, 1, 10);
        }

        for (var i = 0; i < sealedTokens.Count; i++)
        {
            Assert.Equal(Token + i, await keys.DecryptAsync(sealedTokens[i].Device, sealedTokens[i].Sealed));
            Assert.InRange(keys.CachedKeys, 1, 10);
        }
    }

    [Fact]
    [Trait("Category", "Postgres")]
    public async Task RotateAsync_Should_SealWithTheNewGenerationAndKeepTheOldReadableUntilRetired_When_KeysAreCached()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        var keys = new DataKeys(dataSource, TestLedger.MasterKey, TimeProvider.System);
        var device = Guid.CreateVersion7();
        var first = await keys.EncryptAsync(device, "one");

        await keys.RotateAsync(device);
        var second = await keys.EncryptAsync(device, "two");

        Assert.StartsWith("v1:", first, StringComparison.Ordinal);
        Assert.StartsWith("v2:2:", second, StringComparison.Ordinal);
        Assert.Equal("one", await keys.DecryptAsync(device, first));
        Assert.Equal("two", await keys.DecryptAsync(device, second));
        Assert.Equal(1, keys.CachedKeys); // one device, both generations in its one entry

        // A cold cache that first meets the old generation still seals with the newest one.
        var cold = new DataKeys(dataSource, TestLedger.MasterKey, TimeProvider.System);
        Assert.Equal("one", await cold.DecryptAsync(device, first));
        Assert.StartsWith("v2:2:", await cold.EncryptAsync(device, "three"), StringComparison.Ordinal);

        // Another rotation seen by the warm cache moves its newest generation on, and the old ones stay readable.
        await keys.RotateAsync(device);
        Assert.StartsWith("v2:3:", await keys.EncryptAsync(device, "four"), StringComparison.Ordinal);
        Assert.Equal("one", await keys.DecryptAsync(device, first));
        Assert.Equal("two", await keys.DecryptAsync(device, second));
    }

    [Fact]
    public void StatelessDeviceId_Should_BeStableAndKeyed_When_DerivedFromModuleAndToken()
    {
        var hash = new KeyedHash(TestLedger.MasterKey);
        var other = new KeyedHash(new MasterKey(new byte[32]));

        var id = hash.StatelessDeviceId("monalProdiOS", Token);

        Assert.Equal(id, hash.StatelessDeviceId("monalProdiOS", Token));
        Assert.NotEqual(id, hash.StatelessDeviceId("monalProdiOS-sandbox", Token));
        Assert.NotEqual(id, other.StatelessDeviceId("monalProdiOS", Token));
        Assert.Equal(8, id.Version);
    }

    [Fact]
    public void SecretMatches_Should_AcceptOnlyTheSecret_When_Compared()
    {
        var hash = new KeyedHash(TestLedger.MasterKey);
        var stored = hash.HashSecret("s3cret");

        Assert.True(hash.SecretMatches("s3cret", stored));
        Assert.False(hash.SecretMatches("s3cre", stored));
        Assert.False(hash.SecretMatches("s3cret", "not base64!"));
        Assert.DoesNotContain("s3cret", stored, StringComparison.Ordinal);
    }

    [Fact]
    public void Redact_Should_GiveAShortStableHashThatHidesTheValue_When_Logging()
    {
        var hash = new KeyedHash(TestLedger.MasterKey);

        var r = hash.Redact(Token);

        Assert.Equal(r, hash.Redact(Token));
        Assert.Matches("^h:[0-9a-f]{10}$", r);
        Assert.DoesNotContain(Token[..8], r, StringComparison.Ordinal);
    }

    [Fact]
    public void MasterKey_Should_PersistAndReuseTheKeyFile_When_NoKeyIsConfigured()
    {
        var folder = Directory.CreateTempSubdirectory("monal-key-");
        try
        {
            var options = Microsoft.Extensions.Options.Options.Create(new Monal.Push.Ledger.LedgerOptions());
            var data = Microsoft.Extensions.Options.Options.Create(new Monal.Push.Ledger.DataOptions { Path = folder.FullName });

            var first = new KeyedHash(new MasterKey(options, data)).Redact("x");
            var second = new KeyedHash(new MasterKey(options, data)).Redact("x");

            Assert.Equal(first, second);
            var file = Path.Combine(folder.FullName, "master.key");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
