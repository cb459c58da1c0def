using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Monal.Push.Ingest.Component;
using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ingest.Xml;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Ingest;

public sealed class StanzaReaderTests
{
    private const string Header =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='abc'>";

    private static byte[] InStream(string body, bool close = true) =>
        Encoding.UTF8.GetBytes(Header + body + (close ? "</stream:stream>" : string.Empty));

    private static byte[] InStream(byte[] body) =>
        [.. Encoding.UTF8.GetBytes(Header), .. body, .. "</stream:stream>"u8.ToArray()];

    private static async Task<List<XElement>> ReadAllAsync(Stream stream, int limit = 65536)
    {
        using var reader = new StanzaReader(stream, limit);
        await reader.ReadHeaderAsync(CancellationToken.None);
        var stanzas = new List<XElement>();
        while (await reader.ReadStanzaAsync(CancellationToken.None) is { } stanza)
        {
            stanzas.Add(stanza);
        }

        return stanzas;
    }

    private static async Task<string> StreamErrorOfAsync(byte[] bytes, int limit = 65536)
    {
        var error = await Assert.ThrowsAsync<StreamErrorException>(() => ReadAllAsync(new ChunkedStream(bytes, 4096), limit));
        return error.Condition;
    }

    public static TheoryData<string, int> CapturesInChunks()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in Captures.Names("*.iqs.xml").Concat(Captures.Names("*.wire-in.log")))
        {
            data.Add(name, int.MaxValue);
            data.Add(name, 1);
            data.Add(name, 7);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(CapturesInChunks))]
    public async Task ReadStanzaAsync_Should_YieldTheCapturedPublish_When_BytesArriveInAnyChunking(string capture, int chunkSize)
    {
        var raw = Captures.Read(capture);
        var bytes = capture.EndsWith(".wire-in.log", StringComparison.Ordinal) ? raw : InStream(raw);

        var stanzas = await ReadAllAsync(new ChunkedStream(bytes, chunkSize));

        var iq = Assert.Single(stanzas, s => s.Name.LocalName == "iq");
        Assert.True(PushIq.TryParse(iq, out var request, out _));
        Assert.Equal("some-node", request.Node);
        if (capture.EndsWith(".wire-in.log", StringComparison.Ordinal))
        {
            Assert.Equal(2, stanzas.Count);
            Assert.Equal(Handshake.Name, stanzas[0].Name);
        }
    }

    [Theory]
    [MemberData(nameof(Captures.WireStreams), MemberType = typeof(Captures))]
    public async Task ReadHeaderAsync_Should_ReturnTheServerStreamId_When_StreamIsSplitInTwo(string capture)
    {
        var bytes = Captures.Read(capture);
        var text = Encoding.UTF8.GetString(bytes);
        var streamTag = text[text.IndexOf("<stream:stream", StringComparison.Ordinal)..];
        var expectedId = Regex.Match(streamTag[..streamTag.IndexOf('>', StringComparison.Ordinal)], "id='([^']*)'").Groups[1].Value;
        Assert.NotEmpty(expectedId);

        foreach (var split in new[] { 10, bytes.Length / 2, bytes.Length - 20 })
        {
            using var reader = new StanzaReader(ChunkedStream.SplitAt(bytes, split), 65536);
            var header = await reader.ReadHeaderAsync(CancellationToken.None);
            Assert.Equal(expectedId, header.Id);
            Assert.Equal("jabber:component:accept", header.DefaultNamespace);
            Assert.Equal(Handshake.Name, (await reader.ReadStanzaAsync(CancellationToken.None))!.Name);
            Assert.Equal("iq", (await reader.ReadStanzaAsync(CancellationToken.None))!.Name.LocalName);
            Assert.Null(await reader.ReadStanzaAsync(CancellationToken.None));
        }
    }

    [Fact]
    public async Task ReadStanzaAsync_Should_HandOverEachStanza_When_ItsEndTagArrivesBeforeMoreBytes()
    {
        // A pipe that is never completed: the reader must return the first stanza without waiting for the second.
        var pipe = new System.IO.Pipelines.Pipe();
        using var reader = new StanzaReader(pipe.Reader.AsStream(), 65536);
        await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes(Header + "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"));
        using var cts = new CancellationTokenSource(FakeXmppServer.Timeout);

        await reader.ReadHeaderAsync(cts.Token);
        var first = await reader.ReadStanzaAsync(cts.Token);

        Assert.Equal("1", (string?)first!.Attribute("id"));
        Assert.Equal(XName.Get("ping", "urn:xmpp:ping"), first.Elements().Single().Name);
        await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes("  <iq type='get' id='2'/>"));
        Assert.Equal("2", (string?)(await reader.ReadStanzaAsync(cts.Token))!.Attribute("id"));
    }

    [Fact]
    public async Task ReadStanzaAsync_Should_KeepTextAndNamespaces_When_StanzaHasEntitiesAndCdata()
    {
        var stanzas = await ReadAllAsync(new ChunkedStream(
            InStream("<message to='a' xml:lang='en'><body>Tom &amp; <![CDATA[<Jerry>]]> &#x1F680;</body><x xmlns='urn:other' a='&apos;'/></message>"), 3));

        var message = Assert.Single(stanzas);
        Assert.Equal("Tom & <Jerry> 🚀", message.Element(XName.Get("body", "jabber:component:accept"))!.Value);
        Assert.Equal("'", (string?)message.Element(XName.Get("x", "urn:other"))!.Attribute("a"));
        Assert.Equal("en", (string?)message.Attribute(XNamespace.Xml + "lang"));
    }

    [Fact]
    public async Task ReadStanzaAsync_Should_ThrowNotWellFormed_When_TagsDoNotMatch()
    {
        Assert.Equal(StreamErrorConditions.NotWellFormed, await StreamErrorOfAsync(InStream("<iq><a></iq>")));
    }

    [Fact]
    public async Task ReadStanzaAsync_Should_ThrowNotWellFormed_When_EntityIsUndeclared()
    {
        Assert.Equal(StreamErrorConditions.NotWellFormed, await StreamErrorOfAsync(InStream("<iq>&lol;</iq>")));
    }

    [Theory]
    [InlineData("<iq><!-- hidden --></iq>")]
    [InlineData("<!-- between stanzas --><iq/>")]
    [InlineData("<iq><?php echo 1; ?></iq>")]
    [InlineData("<?pi between?><iq/>")]
    public async Task ReadStanzaAsync_Should_ThrowRestrictedXml_When_CommentOrProcessingInstructionArrives(string body)
    {
        Assert.Equal(StreamErrorConditions.RestrictedXml, await StreamErrorOfAsync(InStream(body)));
    }

    [Fact]
    public async Task ReadHeaderAsync_Should_ThrowRestrictedXml_When_PeerSendsBillionLaughsDtd()
    {
        var laughs = new StringBuilder("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol0 'lol'>");
        for (var i = 1; i < 10; i++)
        {
            laughs.Append($"<!ENTITY lol{i} '{string.Concat(Enumerable.Repeat($"&lol{i - 1};", 10))}'>");
        }

        laughs.Append("]><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='x'>");
        laughs.Append("<iq>&lol9;</iq>");
        using var reader = new StanzaReader(new ChunkedStream(Encoding.UTF8.GetBytes(laughs.ToString()), 4096), 65536);

        var error = await Assert.ThrowsAsync<StreamErrorException>(() => reader.ReadHeaderAsync(CancellationToken.None).AsTask());

        Assert.Equal(StreamErrorConditions.RestrictedXml, error.Condition);
    }

    [Fact]
    public async Task ReadHeaderAsync_Should_ThrowInvalidNamespace_When_RootIsNotAStream()
    {
        using var reader = new StanzaReader(new ChunkedStream("<html><body/></html>"u8.ToArray(), 4096), 65536);

        var error = await Assert.ThrowsAsync<StreamErrorException>(() => reader.ReadHeaderAsync(CancellationToken.None).AsTask());

        Assert.Equal(StreamErrorConditions.InvalidNamespace, error.Condition);
    }

    [Fact]
    public async Task ReadStanzaAsync_Should_ThrowEndOfStream_When_ConnectionClosesInsideAStanza()
    {
        await Assert.ThrowsAsync<EndOfStreamException>(() => ReadAllAsync(new ChunkedStream(InStream("<iq><pubsub", close: false), 5)));
    }

    [Fact]
    public async Task ReadStanzaAsync_Should_AcceptManyStanzas_When_EachIsBelowTheLimit()
    {
        // The byte count is per stanza: 100 stanzas of ~2 KB each pass a 4 KB limit... plus the reader's read-ahead slack.
        var body = string.Concat(Enumerable.Range(0, 100).Select(i => $"<iq id='{i}'><x>{new string('a', 2000)}</x></iq> "));

        var stanzas = await ReadAllAsync(new ChunkedStream(InStream(body), 1500), limit: 2048 + ByteCountingStream.MaxReadSize);

        Assert.Equal(100, stanzas.Count);
    }

    [Fact]
    public async Task ReadStanzaAsync_Should_ThrowPolicyViolationWithBoundedMemory_When_TextNodeIs10MB()
    {
        const int limit = 65536;
        const long tenMegabytes = 10L * 1024 * 1024;
        var prefix = Encoding.UTF8.GetBytes(Header + "<iq type='set' id='big'><body>");
        var source = new ChunkedStream(i => i < prefix.Length ? prefix[i] : (byte)'a', prefix.Length + tenMegabytes, 64 * 1024);
        using var reader = new StanzaReader(source, limit);
        await reader.ReadHeaderAsync(CancellationToken.None);

        // The source completes synchronously, so the whole parse runs on this thread and its allocations are counted here.
        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = await Assert.ThrowsAsync<StreamErrorException>(() => reader.ReadStanzaAsync(CancellationToken.None).AsTask());
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(StreamErrorConditions.PolicyViolation, error.Condition);
        Assert.True(source.BytesServed <= prefix.Length + limit + 2 * ByteCountingStream.MaxReadSize, $"read {source.BytesServed} bytes");
        // 10 MB of text held as .NET chars would be 20 MB; the parser's buffers for 64 KB stay well under 2 MB.
        Assert.True(allocated < 2 * 1024 * 1024, $"allocated {allocated} bytes");
    }

    [Fact]
    public async Task ReadStanzaAsync_Should_ThrowPolicyViolation_When_ManyTinyElementsExceedTheLimit()
    {
        var body = "<iq>" + string.Concat(Enumerable.Repeat("<a/>", 50_000)) + "</iq>";

        Assert.Equal(StreamErrorConditions.PolicyViolation, await StreamErrorOfAsync(InStream(body), limit: 65536));
    }

    [Fact]
    public async Task ReadStanzaAsync_Should_ReturnNull_When_PeerClosesTheStream()
    {
        Assert.Empty(await ReadAllAsync(new ChunkedStream(InStream("   "), 2)));
    }

    [Theory]
    [InlineData(StanzaReader.MaxDepth, false)]
    [InlineData(StanzaReader.MaxDepth + 1, true)]
    public async Task ReadStanzaAsync_Should_RefuseTheStanza_When_ItNestsDeeperThanTheLimit(int depth, bool refused)
    {
        // The iq itself is the first level.
        var body = "<iq type='set' id='n' from='a' to='b'>" + string.Concat(Enumerable.Repeat("<a>", depth - 1))
            + string.Concat(Enumerable.Repeat("</a>", depth - 1)) + "</iq>";

        if (refused)
        {
            Assert.Equal(StreamErrorConditions.PolicyViolation, await StreamErrorOfAsync(InStream(body)));
        }
        else
        {
            Assert.Single(await ReadAllAsync(new ChunkedStream(InStream(body), 4096)));
        }
    }

    [Theory]
    [InlineData(StanzaReader.MaxAttributes, false)]
    [InlineData(StanzaReader.MaxAttributes + 1, true)]
    public async Task ReadStanzaAsync_Should_RefuseTheStanza_When_AnElementHasMoreAttributesThanTheLimit(int attributes, bool refused)
    {
        var body = "<iq type='get' id='w' from='a' to='b'><ping xmlns='urn:xmpp:ping'"
            + string.Concat(Enumerable.Range(0, attributes - 1).Select(i => $" a{i}='v'")) + "/></iq>";

        if (refused)
        {
            Assert.Equal(StreamErrorConditions.PolicyViolation, await StreamErrorOfAsync(InStream(body)));
        }
        else
        {
            // The namespace declaration counts as an attribute of the XML but is part of the XName, not an XAttribute.
            Assert.Equal(attributes - 1, (await ReadAllAsync(new ChunkedStream(InStream(body), 4096)))[0].Elements().Single().Attributes().Count());
        }
    }
}
