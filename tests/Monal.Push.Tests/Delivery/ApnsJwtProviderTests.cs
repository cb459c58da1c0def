using Monal.Push.Tests.Fixtures;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Delivery.Apns;

namespace Monal.Push.Tests.Delivery;

public sealed class ApnsJwtProviderTests : IDisposable
{
    private readonly ProviderKeyFile _key = new();
    private readonly ManualClock _time = new();

    public void Dispose() => _key.Dispose();

    private ApnsJwtProvider CreateProvider(TimeSpan? refreshAfter = null) =>
        ApnsJwtProvider.FromKeyFile(_key.TeamId, _key.KeyId, _key.Path, _time, NullLogger.Instance, refreshAfter);

    private static (JsonElement Header, JsonElement Claims, byte[] Signature, string SigningInput) Decode(string jwt)
    {
        var parts = jwt.Split('.');
        Assert.Equal(3, parts.Length);
        return (JsonDocument.Parse(Base64Url.DecodeFromChars(parts[0])).RootElement,
            JsonDocument.Parse(Base64Url.DecodeFromChars(parts[1])).RootElement,
            Base64Url.DecodeFromChars(parts[2]),
            parts[0] + "." + parts[1]);
    }

    [Fact]
    public void GetToken_Should_CarryAlgKidIssAndIat_When_Issued()
    {
        using var provider = CreateProvider();

        var (header, claims, _, _) = Decode(provider.GetToken());

        Assert.Equal("ES256", header.GetProperty("alg").GetString());
        Assert.Equal(_key.KeyId, header.GetProperty("kid").GetString());
        Assert.Equal(2, header.EnumerateObject().Count());
        Assert.Equal(_key.TeamId, claims.GetProperty("iss").GetString());
        Assert.Equal(_time.GetUtcNow().ToUnixTimeSeconds(), claims.GetProperty("iat").GetInt64());
        Assert.Equal(2, claims.EnumerateObject().Count());
    }

    [Fact]
    public void GetToken_Should_BeSignedInP1363_When_VerifiedWithThePublicKey()
    {
        using var provider = CreateProvider();
        using var publicKey = ECDsa.Create();
        publicKey.ImportFromPem(_key.PublicKeyPem);

        var (_, _, signature, signingInput) = Decode(provider.GetToken());

        Assert.Equal(64, signature.Length);
        Assert.True(publicKey.VerifyData(Encoding.ASCII.GetBytes(signingInput), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
        Assert.DoesNotContain('=', provider.GetToken());
    }

    [Fact]
    public void GetAuthorizationHeader_Should_ReturnTheCachedString_When_TokenIsFresh()
    {
        using var provider = CreateProvider();

        var first = provider.GetAuthorizationHeader();
        _time.Advance(TimeSpan.FromMinutes(44));
        var second = provider.GetAuthorizationHeader();

        Assert.StartsWith("bearer ", first);
        Assert.Same(first, second);
    }

    [Fact]
    public void GetAuthorizationHeader_Should_Refresh_When_RefreshAgeIsReached()
    {
        using var provider = CreateProvider();
        var first = provider.GetToken();

        _time.Advance(ApnsJwtProvider.DefaultRefreshAfter);
        var second = provider.GetToken();

        Assert.NotEqual(first, second);
        Assert.Equal(_time.GetUtcNow().ToUnixTimeSeconds(), Decode(second).Claims.GetProperty("iat").GetInt64());
    }

    [Theory]
    [InlineData(20)]
    [InlineData(45)]
    [InlineData(59)]
    public void GetToken_Should_NeverBeOlderThanAnHourNorChangeWithin20Minutes_When_UsedForHours(int refreshAfterMinutes)
    {
        using var provider = CreateProvider(TimeSpan.FromMinutes(refreshAfterMinutes));
        var lastToken = provider.GetToken();
        var lastChange = _time.GetUtcNow();
        var changes = 0;

        for (var minute = 0; minute < 6 * 60; minute++)
        {
            _time.Advance(TimeSpan.FromSeconds(59));
            var token = provider.GetToken();
            var iat = DateTimeOffset.FromUnixTimeSeconds(Decode(token).Claims.GetProperty("iat").GetInt64());
            Assert.True(_time.GetUtcNow() - iat < TimeSpan.FromMinutes(60), $"token {(_time.GetUtcNow() - iat).TotalMinutes} minutes old");
            if (token != lastToken)
            {
                Assert.True(_time.GetUtcNow() - lastChange >= ApnsJwtProvider.MinimumAge);
                lastToken = token;
                lastChange = _time.GetUtcNow();
                changes++;
            }
        }

        Assert.True(changes >= 5);
    }

    [Fact]
    public void OnExpiredProviderToken_Should_NotRefresh_When_TokenIsYoungerThan20Minutes()
    {
        using var provider = CreateProvider();
        var header = provider.GetAuthorizationHeader();

        _time.Advance(TimeSpan.FromMinutes(19));
        var refreshed = provider.OnExpiredProviderToken(header);

        Assert.False(refreshed);
        Assert.Same(header, provider.GetAuthorizationHeader());
    }

    [Fact]
    public void OnExpiredProviderToken_Should_Refresh_When_TokenIs20MinutesOld()
    {
        using var provider = CreateProvider();
        var header = provider.GetAuthorizationHeader();

        _time.Advance(TimeSpan.FromMinutes(20));
        var refreshed = provider.OnExpiredProviderToken(header);
        var next = provider.GetAuthorizationHeader();

        Assert.True(refreshed);
        Assert.NotEqual(header, next);
        // A second 403 for the old token (a request that was in flight) must not refresh again.
        _time.Advance(TimeSpan.FromMinutes(1));
        provider.OnExpiredProviderToken(header);
        Assert.Same(next, provider.GetAuthorizationHeader());
    }

    [Theory]
    [InlineData(10)]
    [InlineData(60)]
    [InlineData(90)]
    public void Constructor_Should_Throw_When_RefreshAgeIsOutsideApplesWindow(int minutes) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => CreateProvider(TimeSpan.FromMinutes(minutes)));

    [Fact]
    public void FromKeyFile_Should_Throw_When_FileHoldsOnlyAPublicKey() =>
        Assert.ThrowsAny<CryptographicException>(() =>
            ApnsJwtProvider.FromKeyFile(_key.TeamId, _key.KeyId, _key.PublicKeyPath, _time, NullLogger.Instance));

    [Fact]
    public void FromKeyFile_Should_Throw_When_KeyIsNotP256()
    {
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var path = _key.WriteFile("p384.p8", p384.ExportPkcs8PrivateKeyPem());

        Assert.ThrowsAny<CryptographicException>(() => ApnsJwtProvider.FromKeyFile(_key.TeamId, _key.KeyId, path, _time, NullLogger.Instance));
    }

    [Fact]
    public async Task GetAuthorizationHeader_Should_IssueOneToken_When_CalledConcurrently()
    {
        using var provider = CreateProvider();

        var headers = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(provider.GetAuthorizationHeader)));

        Assert.Single(headers.Distinct());
    }
}
