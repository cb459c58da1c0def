using System.Globalization;
using System.Text;
using System.Xml.Linq;
using CsCheck;
using Microsoft.Extensions.Logging.Abstractions;
using Monal.Push.Ingest.Component;
using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Ingest.Xml;
using Monal.Push.Tests.Fixtures;
using Xunit.Abstractions;

namespace Monal.Push.Tests.Ingest;

/// <summary>
/// Hostile input at scale against the stream reader, the publish parser and the router: stanzas generated with CsCheck
/// (valid publishes, ad-hoc commands and service queries; mutations of every captured and fixture stanza; random
/// bytes; deep nesting; huge attributes), several per stream, delivered in random chunk sizes. For every stream: no
/// exception escapes but the two that end a link (a stream error, or the peer closing mid-stream); every IQ get or
/// set read before that gets exactly one reply, a result or an error with the IQ's id addressed back to its sender,
/// that serializes to well-formed XML; the reader never reads more than a stanza's byte limit plus its buffer past
/// the last complete stanza, so memory stays bounded whatever the input.
/// </summary>
/// <remarks>
/// CI runs a seeded short version (the same inputs every run). The long run is documented in docs/benchmarks.md:
/// <c>MONAL_FUZZ_STANZAS=1000000 MONAL_FUZZ_SEED=N dotnet test tests/Monal.Push.Tests -c Release --filter Category=Fuzz</c>.
/// </remarks>
[Trait("Category", "Fuzz")]
public sealed class StanzaFuzzTests(ITestOutputHelper output)
{
    private const int MaxStanzaBytes = 65536; // ComponentOptions' default
    private const string Header =
        "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='fuzz' from='localhost'>";

    private static readonly string[] Corpus = LoadCorpus();

    private static int StanzaBudget =>
        int.TryParse(Environment.GetEnvironmentVariable("MONAL_FUZZ_STANZAS"), NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : 20_000;

    private static ulong Seed =>
        ulong.TryParse(Environment.GetEnvironmentVariable("MONAL_FUZZ_SEED"), NumberStyles.None, CultureInfo.InvariantCulture, out var s)
            ? s
            : 20261205;

    [Fact]
    public async Task ReadAndRoute_Should_AnswerEveryIqOrEndWithAStreamError_When_TheInputIsGeneratedAndMutated()
    {
        var pcg = new PCG(1, Seed);
        var stats = new FuzzStats();
        var streams = 0;
        while (stats.Stanzas < StanzaBudget)
        {
            var state = pcg.ToString();
            var (pieces, chunk, close) = Streams.Generate(pcg, null!, out _);
            try
            {
                await RunStreamAsync(pieces, chunk, close, stats);
            }
            catch (Exception e)
            {
                throw new InvalidOperationException(
                    $"Stream {streams} (generator state {state}, seed {Seed}) failed: {Describe(pieces)}", e);
            }

            streams++;
        }

        output.WriteLine($"seed {Seed}: {streams} streams, {stats}");
        Assert.True(stats.Iqs > StanzaBudget / 10, $"the generator produced too few IQs: {stats}");
        Assert.True(stats.Publishes > StanzaBudget / 20, $"the generator produced too few well-formed publishes: {stats}");
        Assert.True(stats.StreamErrors > 0 && stats.ClosedMidStream > 0, $"the generator never broke a stream: {stats}");
    }

    [Fact]
    public async Task ReadStanzaAsync_Should_YieldTheSameStanza_When_EveryFixtureIsSplitAtEveryByteBoundary()
    {
        var splits = 0;
        foreach (var stanza in Corpus)
        {
            var bytes = Encoding.UTF8.GetBytes(Header + stanza + "</stream:stream>");
            var whole = Assert.Single(await ReadAllAsync(new ChunkedStream(bytes, int.MaxValue)));
            for (var at = 1; at < bytes.Length; at++)
            {
                var split = Assert.Single(await ReadAllAsync(ChunkedStream.SplitAt(bytes, at)));
                Assert.True(XNode.DeepEquals(whole, split), $"split at byte {at} of {stanza}");
                splits++;
            }
        }

        output.WriteLine($"{Corpus.Length} stanzas, {splits} splits");
        Assert.True(Corpus.Length >= 20, "the fixtures were found");
    }

    [Theory]
    [InlineData("attribute")]
    [InlineData("text")]
    [InlineData("nesting")]
    public async Task ReadStanzaAsync_Should_StopReadingNearTheLimit_When_AStanzaNeverEnds(string shape)
    {
        // 1 GiB of one endless stanza, produced on demand: the reader must give up after about one stanza's limit.
        var prefix = Encoding.UTF8.GetBytes(Header + "<iq type='set' id='huge' from='localhost' to='push.localhost'"
            + shape switch { "attribute" => " a='", "text" => ">", _ => ">" });
        var repeat = shape == "nesting" ? "<a>"u8.ToArray() : "A"u8.ToArray();
        byte Content(long i) => i < prefix.Length ? prefix[i] : repeat[(i - prefix.Length) % repeat.Length];
        var stream = new ChunkedStream(Content, 1L << 30, 4096);

        var error = await Assert.ThrowsAsync<StreamErrorException>(() => ReadAllAsync(stream));

        Assert.Equal(StreamErrorConditions.PolicyViolation, error.Condition);
        Assert.True(stream.BytesServed < prefix.Length + MaxStanzaBytes + (4 * ByteCountingStream.MaxReadSize),
            $"read {stream.BytesServed} bytes for a limit of {MaxStanzaBytes}");
    }

    private static async Task RunStreamAsync(byte[][] pieces, int chunk, bool close, FuzzStats stats)
    {
        var body = pieces.SelectMany(p => p).ToArray();
        byte[] bytes = [.. Encoding.UTF8.GetBytes(Header), .. body, .. (close ? "</stream:stream>"u8.ToArray() : [])];
        var stream = new ChunkedStream(bytes, chunk);
        var router = new StanzaRouter(new FakePublishHandler(), new FakeRegistrationHandler(), NullLogger<StanzaRouter>.Instance);
        using var reader = new StanzaReader(stream, MaxStanzaBytes);
        await reader.ReadHeaderAsync(CancellationToken.None);
        long lastComplete = 0;
        try
        {
            while (await reader.ReadStanzaAsync(CancellationToken.None) is { } stanza)
            {
                lastComplete = reader.TotalBytes;
                stats.Stanzas++;
                await AnswerAsync(router, stanza, stats);
            }

            stats.Closed++;
        }
        catch (StreamErrorException e)
        {
            Assert.Contains(e.Condition, KnownConditions);
            stats.Stanzas++; // the stanza that broke the stream
            stats.StreamErrors++;
        }
        catch (EndOfStreamException)
        {
            stats.Stanzas++;
            stats.ClosedMidStream++;
        }

        Assert.True(reader.TotalBytes - lastComplete <= MaxStanzaBytes + (4 * ByteCountingStream.MaxReadSize),
            $"the reader read {reader.TotalBytes - lastComplete} bytes past the last complete stanza");
    }

    private static readonly string[] KnownConditions =
    [
        StreamErrorConditions.NotWellFormed, StreamErrorConditions.RestrictedXml, StreamErrorConditions.PolicyViolation,
        StreamErrorConditions.InvalidNamespace, StreamErrorConditions.BadFormat,
    ];

    private static async Task AnswerAsync(StanzaRouter router, XElement stanza, FuzzStats stats)
    {
        var reply = await router.RouteAsync(stanza, CancellationToken.None);
        var type = (string?)stanza.Attribute("type");
        if (stanza.Name != Iq.Name || type is not ("get" or "set"))
        {
            Assert.Null(reply);
            return;
        }

        stats.Iqs++;
        if (stanza.Elements().Count() == 1 && stanza.Elements().Single().Name == PushIq.PubSubName)
        {
            stats.Publishes++;
        }

        Assert.NotNull(reply);
        Assert.Equal(Iq.Name, reply.Name);
        Assert.Equal((string?)stanza.Attribute("id"), (string?)reply.Attribute("id"));
        Assert.Equal((string?)stanza.Attribute("from"), (string?)reply.Attribute("to"));
        var replyType = (string?)reply.Attribute("type");
        Assert.True(replyType is "result" or "error", $"reply type {replyType}");
        if (replyType == "error")
        {
            stats.Errors++;
        }

        // What the writer puts on the wire must parse again.
        XElement.Parse(reply.ToString(SaveOptions.DisableFormatting | SaveOptions.OmitDuplicateNamespaces));
    }

    private static async Task<List<XElement>> ReadAllAsync(Stream stream)
    {
        using var reader = new StanzaReader(stream, MaxStanzaBytes);
        await reader.ReadHeaderAsync(CancellationToken.None);
        var stanzas = new List<XElement>();
        while (await reader.ReadStanzaAsync(CancellationToken.None) is { } stanza)
        {
            stanzas.Add(stanza);
        }

        return stanzas;
    }

    private static string Describe(byte[][] pieces) =>
        string.Join(" | ", pieces.Select(p => p.Length > 300 ? $"<{p.Length} bytes: {Text(p.AsSpan(0, 200))}…>" : Text(p)));

    private static string Text(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes).Replace("\0", "\\0", StringComparison.Ordinal);

    // Every stanza of the captures (Prosody, ejabberd) and of the Monal client fixtures, plus the queries servers send.
    private static string[] LoadCorpus()
    {
        var stanzas = new List<string>();
        foreach (var name in Captures.Names("*.iqs.xml"))
        {
            var root = XElement.Parse("<r>" + Captures.ReadText(name) + "</r>");
            stanzas.AddRange(root.Elements().Select(e => e.ToString(SaveOptions.DisableFormatting)));
        }

        var fixtures = XDocument.Parse(Captures.ReadText("monal-clients.fixtures.xml")).Root!.Elements("fixture");
        stanzas.AddRange(fixtures.SelectMany(f => f.Elements()).Select(e => e.ToString(SaveOptions.DisableFormatting)));
        stanzas.AddRange(
        [
            "<iq type='get' id='p1' from='localhost' to='push.localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
            "<iq type='get' id='d1' from='localhost' to='push.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
            "<iq type='get' id='d2' from='localhost' to='push.localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>",
            "<iq type='result' id='r1' from='localhost' to='push.localhost'/>",
            "<message from='localhost' to='push.localhost'><body>hi</body></message>",
            "<presence from='localhost' to='push.localhost'/>",
        ]);
        return [.. stanzas];
    }

    // ---- Generators ---------------------------------------------------------------------------------------------

    private static readonly Gen<string> Words = Gen.Char["abcdefABCDEF0123456789-_.@/ "].Array[0, 80].Select(c => new string(c));

    private static readonly Gen<string> Tokens = Gen.OneOf<string>(
        Gen.Byte.Array[16, 100].Select(b => Convert.ToHexStringLower(b)),
        Gen.Byte.Array[16, 100].Select(b => Convert.ToHexString(b)),
        Gen.Guid.Select(g => g.ToString()),
        Gen.Guid.Select(g => g.ToString().ToUpperInvariant()),
        Words,
        Gen.String.Select(XmlText));

    private static readonly Gen<string> Texts = Gen.OneOf<string>(Gen.String.Select(XmlText), Words,
        Gen.OneOf<string>("set", "get", "result", "error", "", "monalProdiOS", "monalProdiOS-sandbox", "FORM_TYPE",
            "http://jabber.org/protocol/pubsub#publish-options", "pushModule", "secret", "localhost", "push.localhost",
            "user@localhost/res", "@", "/", "a@b@c"));

    // A well-formed IQ built from random parts: every attribute, field and nesting a real server might vary.
    private static readonly Gen<byte[]> Built =
        Gen.Select(Gen.OneOf("set", "get", "result", "error", "bogus"), Texts, Texts, Texts, Tokens,
                Gen.Select(Texts, Texts).Array[0, 4], Gen.Int[0, 3], Gen.Int[0, 2])
            .Select((type, id, from, to, node, fields, items, publishes) =>
            {
                XNamespace pubsub = "http://jabber.org/protocol/pubsub";
                XNamespace data = "jabber:x:data";
                var iq = new XElement("iq", new XAttribute("type", type), new XAttribute("id", id),
                    new XAttribute("from", from), new XAttribute("to", to),
                    new XElement(pubsub + "pubsub",
                        Enumerable.Range(0, publishes).Select(_ => new XElement(pubsub + "publish", new XAttribute("node", node),
                            Enumerable.Range(0, items).Select(_ => new XElement(pubsub + "item",
                                new XElement(XName.Get("notification", "urn:xmpp:push:0")))))),
                        new XElement(pubsub + "publish-options", new XElement(data + "x", new XAttribute("type", "submit"),
                            fields.Select(f => new XElement(data + "field", new XAttribute("var", f.Item1), new XElement(data + "value", f.Item2)))))));
                return Encoding.UTF8.GetBytes(iq.ToString(SaveOptions.DisableFormatting));
            });

    private static readonly Gen<byte[]> Valid = Gen.OneOf(Corpus).Select(s => Encoding.UTF8.GetBytes(s));

    private static readonly byte[][] Hostile =
    [
        .. new[]
        {
            "<!DOCTYPE iq [<!ENTITY x 'y'>]>", "<!--c-->", "<?pi x?>", "&x;", "&#0;", "&#x1F600;", "<![CDATA[x]]>", "]]>", "\0",
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>", "</stream:stream>", "<stream:error/>",
            "<iq type='set' id='in'>", "</iq>", "xmlns='urn:other'", " xmlns:p='urn:p' p:a='1'", "\u00e9", "\ud83d\ude00",
            "<x xmlns='jabber:x:data' type='submit'><field var='pushModule'><value>monalProdiOS</value></field></x>",
        }.Select(Encoding.UTF8.GetBytes),
        [0xC3], [0xFF, 0xFE], [0xED, 0xA0, 0x80], [0xEF, 0xBF, 0xBF],
    ];

    // Byte-level mutations of a corpus stanza: flip, insert, delete, duplicate, truncate, and XML's hostile tokens.
    private static readonly Gen<byte[]> Mutated =
        Gen.Select(Valid, Gen.Select(Gen.Int[0, 6], Gen.Int, Gen.Int, Gen.Byte).Array[1, 6])
            .Select((seed, ops) =>
            {
                var bytes = new List<byte>(seed);
                foreach (var (op, a, b, value) in ops)
                {
                    if (bytes.Count == 0)
                    {
                        break;
                    }

                    var at = (int)((uint)a % (uint)bytes.Count);
                    var len = (int)((uint)b % (uint)Math.Min(64, bytes.Count - at)) + 1;
                    switch (op)
                    {
                        case 0: bytes[at] ^= (byte)(value | 1); break;
                        case 1: bytes.Insert(at, value); break;
                        case 2: bytes.RemoveRange(at, Math.Min(len, bytes.Count - at)); break;
                        case 3: bytes.InsertRange(at, bytes.GetRange(at, Math.Min(len, bytes.Count - at))); break;
                        case 4: bytes.RemoveRange(at, bytes.Count - at); break;
                        default: bytes.InsertRange(at, Hostile[(int)((uint)b % (uint)Hostile.Length)]); break;
                    }
                }

                return bytes.ToArray();
            });

    private static readonly Gen<byte[]> Random = Gen.Byte.Array[0, 600];

    private static readonly Gen<byte[]> Deep = Gen.Int[1, 25_000].Select(n =>
        Encoding.UTF8.GetBytes("<iq type='set' id='deep' from='localhost' to='push.localhost'>"
            + string.Concat(Enumerable.Repeat("<a>", n)) + string.Concat(Enumerable.Repeat("</a>", n)) + "</iq>"));

    private static readonly Gen<byte[]> HugeAttribute = Gen.Select(Gen.Int[1, 2 * MaxStanzaBytes], Gen.Bool).Select((n, many) =>
        Encoding.UTF8.GetBytes(many
            ? "<iq type='get' id='wide' from='localhost' to='push.localhost'" + string.Concat(Enumerable.Range(0, n / 16).Select(i => $" a{i}='v'"))
                + "><ping xmlns='urn:xmpp:ping'/></iq>"
            : $"<iq type='get' id='long' from='localhost' to='push.localhost' a='{new string('A', n)}'><ping xmlns='urn:xmpp:ping'/></iq>"));

    private static readonly Gen<byte[]> Piece = Gen.Frequency(
        (35, Valid), (30, Built), (25, Mutated), (4, Random), (3, Deep), (3, HugeAttribute));

    // Chunk sizes from one byte per read up to everything at once. One-byte reads cost the XML reader about 7 µs a
    // byte, so only small streams are read that finely (every corpus stanza is split at every byte by its own test).
    private static readonly Gen<(byte[][] Pieces, int Chunk, bool Close)> Streams =
        Gen.Select(Piece.Array[1, 8], Gen.Int[1, 16], Gen.Int[17, 5000], Gen.Int[0, 5], Gen.Bool)
            .Select((pieces, small, medium, pick, close) =>
            {
                var size = pieces.Sum(p => p.Length);
                var chunk = pick switch
                {
                    < 3 when size <= 4096 => small,
                    < 5 => medium,
                    _ => int.MaxValue,
                };
                return (pieces, chunk, close);
            });

    // Strings from Gen.String may hold characters XML cannot carry (XElement refuses them when written): replace those;
    // unpaired surrogates become U+FFFD on the way through runes.
    private static string XmlText(string s) =>
        string.Concat(s.EnumerateRunes().Select(r => r.Value is 0x9 or 0xA or 0xD || (r.Value >= 0x20 && r.Value != 0xFFFE && r.Value != 0xFFFF)
            ? r.ToString()
            : "?"));

    private sealed class FuzzStats
    {
        public long Stanzas { get; set; }
        public long Iqs { get; set; }
        public long Publishes { get; set; }
        public long Errors { get; set; }
        public long Closed { get; set; }
        public long StreamErrors { get; set; }
        public long ClosedMidStream { get; set; }

        public override string ToString() =>
            $"{Stanzas} stanzas read or refused, {Iqs} IQs answered ({Publishes} publishes, {Errors} errors), {Closed} streams closed cleanly, "
            + $"{StreamErrors} ended by a stream error, {ClosedMidStream} cut mid-stream";
    }
}
