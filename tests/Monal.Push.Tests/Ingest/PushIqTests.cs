using System.Xml.Linq;
using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

public sealed class PushIqTests
{
    private static XElement Load(string capture)
    {
        // Captured as received on a component stream, where jabber:component:accept is the default namespace.
        var text = System.Text.Encoding.UTF8.GetString(Captures.Read(capture));
        return XElement.Parse(text.Replace("<iq ", "<iq xmlns='jabber:component:accept' ", StringComparison.Ordinal));
    }

    private static XElement Publish(string publishInner = "<item><notification xmlns='urn:xmpp:push:0'/></item>",
        string node = " node='n1'", string options = "", string from = "example.org", string type = "set") =>
        XElement.Parse(
            $"<iq xmlns='jabber:component:accept' to='push.example.org' from='{from}' type='{type}' id='i1'>" +
            $"<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish{node}>{publishInner}</publish>{options}</pubsub></iq>");

    private static string Options(params (string Var, string Value)[] fields) =>
        "<publish-options><x xmlns='jabber:x:data' type='submit'>" +
        "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
        string.Concat(fields.Select(f => $"<field var='{f.Var}'><value>{f.Value}</value></field>")) +
        "</x></publish-options>";

    [Theory]
    [MemberData(nameof(Captures.Iqs), MemberType = typeof(Captures))]
    public void TryParse_Should_ReadNodeSecretAndDomains_When_IqIsACapturedPublish(string capture)
    {
        var iq = Load(capture);

        Assert.True(PushIq.TryParse(iq, out var request, out var error), error?.Text);

        Assert.Equal((string?)iq.Attribute("id"), request.Id);
        Assert.Equal("push.localhost", request.ToDomain);
        Assert.Equal("localhost", request.FromDomain);
        Assert.Equal("some-node", request.Node);
        Assert.Null(request.PushModule);
        Assert.Equal(capture.Contains("no-publish-options", StringComparison.Ordinal) ? null : "s3cr3t-token", request.Secret);
        Assert.True(request.HasItem);
    }

    [Theory]
    [MemberData(nameof(Captures.Iqs), MemberType = typeof(Captures))]
    public void TryParse_Should_KeepNothingOfTheSummary_When_ServerSendsBodyAndSender(string capture)
    {
        Assert.True(PushIq.TryParse(Load(capture), out var request, out _));

        var kept = string.Join("|", request.Id, request.ToDomain, request.FromDomain, request.Node, request.PushModule,
            request.Secret, request.ToString());
        Assert.DoesNotContain("bob", kept, StringComparison.Ordinal);
        Assert.DoesNotContain("message", kept, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Jerry", kept, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_Should_GiveTheSameRequest_When_AttributeOrderDiffers()
    {
        var a = Load("prosody-default.iqs.xml");
        var b = new XElement(a);
        b.ReplaceAttributes(a.Attributes().Reverse().Select(x => new XAttribute(x)).ToArray());
        foreach (var element in b.Descendants())
        {
            element.ReplaceAttributes(element.Attributes().Reverse().Select(x => new XAttribute(x)).ToArray());
        }

        Assert.True(PushIq.TryParse(a, out var first, out _));
        Assert.True(PushIq.TryParse(b, out var second, out _));
        Assert.Equal(first, second);
    }

    [Fact]
    public void TryParse_Should_ReadPushModule_When_MonalUsesStatelessMode()
    {
        var iq = Publish(options: Options(("pushModule", "monalProdiOS")), node: " node='abcdef0123'");

        Assert.True(PushIq.TryParse(iq, out var request, out _));

        Assert.Equal("monalProdiOS", request.PushModule);
        Assert.Null(request.Secret);
        Assert.Equal("abcdef0123", request.Node);
        Assert.DoesNotContain("abcdef0123", request.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("alice@example.org")]
    [InlineData("alice@Example.Org/phone")]
    [InlineData("example.org/resource@with-at")]
    public void TryParse_Should_CutFromToItsDomain_When_FromIsAUserJid(string from)
    {
        Assert.True(PushIq.TryParse(Publish(from: from), out var request, out _));

        Assert.Equal("example.org", request.FromDomain);
        Assert.DoesNotContain("alice", request.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_Should_Accept_When_PublishOptionsFormIsEmpty()
    {
        Assert.True(PushIq.TryParse(Publish(options: "<publish-options/>"), out var request, out _));
        Assert.Null(request.Secret);
    }

    public static TheoryData<string, string> Malformed() => new()
    {
        { "no item", Publish(publishInner: string.Empty).ToString() },
        { "two items", Publish(publishInner: "<item/><item/>").ToString() },
        { "no node", Publish(node: string.Empty).ToString() },
        { "empty node", Publish(node: " node=''").ToString() },
        { "no publish", XElement.Parse(
            "<iq xmlns='jabber:component:accept' to='p' from='s' type='set' id='i1'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>").ToString() },
        { "get", Publish(type: "get").ToString() },
        { "no from", Publish().ToString().Replace("from=\"example.org\"", string.Empty, StringComparison.Ordinal) },
        { "wrong form type", Publish(options: "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>" +
            "<value>urn:other</value></field></x></publish-options>").ToString() },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void TryParse_Should_ReturnModifyBadRequest_When_PublishIsMalformed(string why, string xml)
    {
        Assert.False(PushIq.TryParse(XElement.Parse(xml), out var request, out var error), why);

        Assert.Null(request);
        Assert.Equal(StanzaErrorType.Modify, error.Type);
        Assert.Equal("bad-request", error.Condition);
    }
}
