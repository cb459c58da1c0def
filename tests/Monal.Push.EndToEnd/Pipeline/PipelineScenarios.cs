using System.Security.Cryptography;
using Monal.Push.Demo.Chatting;
using Monal.Push.EndToEnd.Servers;
using Monal.Push.MockApns;

namespace Monal.Push.EndToEnd.Pipeline;

/// <summary>The scenarios every real server runs through the whole pipeline.</summary>
internal static class PipelineScenarios
{
    public static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public static string NewUser(string prefix) => prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

    /// <summary>A user enables push with these options and goes offline; another user sends a message.</summary>
    public static async Task<(string Recipient, string Sender)> MessageOfflineUserAsync(
        PipelineFixture fixture, string node, IReadOnlyDictionary<string, string> publishOptions, string body)
    {
        var server = fixture.Server;
        var alice = NewUser("alice");
        var bob = NewUser("bob");
        await server.CreateUserAsync(alice, "pw-a");
        await server.CreateUserAsync(bob, "pw-b");
        await using (var a = await TinyXmppClient.ConnectAsync(server, alice, "pw-a"))
        {
            await a.EnablePushAsync(server.ComponentDomain, node, publishOptions);
            await a.DisconnectAsync();
        }

        await using var b = await TinyXmppClient.ConnectAsync(server, bob, "pw-b");
        await b.SendMessageAsync($"{alice}@{server.Domain}", body);
        return ($"{alice}@{server.Domain}", b.Jid);
    }

    /// <summary>The request reached the mock as Apple would want it, and the ledger holds the push and its delivery.</summary>
    public static async Task AssertDeliveredAsync(PushPipeline pipeline, MockApnsRequest request)
    {
        Assert.Equal("POST", request.Method);
        Assert.Equal(PushPipeline.Topic, request.Header("apns-topic"));
        Assert.Equal("alert", request.Header("apns-push-type"));
        Assert.Equal("10", request.Header("apns-priority"));
        Assert.True(long.Parse(request.Header("apns-expiration")!, System.Globalization.CultureInfo.InvariantCulture)
            > DateTimeOffset.UtcNow.ToUnixTimeSeconds(), "apns-expiration is an absolute time in the future");
        Assert.True(request.ProviderToken?.SignatureValid, "the JWT verifies with the provider's public key");
        Assert.Equal(200, request.Status);
        var apnsId = request.Header("apns-id")!;
        Assert.Equal(1, await pipeline.CountAsync(
            "select count(*) from push_events where type = 'push_requested.v1' and data->>'push_id' = $1", apnsId));
        await pipeline.WaitForCountAsync(1,
            "select count(*) from push_events where type = 'push_delivered.v1' and data->>'push_id' = $1", apnsId);
    }
}
