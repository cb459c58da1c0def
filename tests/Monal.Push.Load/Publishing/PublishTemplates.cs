using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace Monal.Push.Load.Publishing;

/// <summary>
/// Writes publish IQs straight into a byte buffer from pre-encoded pieces: no XML DOM, no string per request.
/// The shapes and attribute order are those of tests/Monal.Push.Tests/Fixtures/Captures (Prosody: id type from to; ejabberd: to from type id,
/// with <c>type</c> before <c>xmlns</c> on forms and labelled fields). Holes: the IQ id, from, node and the
/// publish-option value; the option is <c>pushModule</c> (stateless node) or <c>secret</c> (registered node).
/// </summary>
internal sealed class PublishTemplates
{
    private const string ProsodyHead = "<iq id='{id}' type='set' from='{from}' to='{to}'>";
    private const string EjabberdHead = "<iq to='{to}' from='{from}' type='set' id='{id}'>";
    private const string ProsodyPublish =
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'><item><notification xmlns='urn:xmpp:push:0'>" +
        "<x xmlns='jabber:x:data' type='form'><field type='hidden' var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>" +
        "<field type='text-single' var='message-count'><value>1</value></field><field type='text-single' var='pending-subscription-count'/>" +
        "<field type='jid-single' var='last-message-sender'/><field type='text-single' var='last-message-body'><value>New Message!</value></field>" +
        "</x></notification></item></publish>";
    private const string ProsodyOptions =
        "<publish-options><x xmlns='jabber:x:data' type='submit'><field type='hidden' var='FORM_TYPE'>" +
        "<value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='{option}'><value>{value}</value></field>" +
        "</x></publish-options></pubsub></iq>";
    private const string EjabberdSummaryPublish =
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'><item><notification xmlns='urn:xmpp:push:0'>" +
        "<x type='submit' xmlns='jabber:x:data'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:push:summary</value></field>" +
        "<field var='last-message-body' type='text-single' label='The body text of the last received message'><value>New message</value></field>" +
        "</x></notification></item></publish>";
    private const string EjabberdEmptyPublish =
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'><item><notification xmlns='urn:xmpp:push:0'/></item></publish>";
    private const string EjabberdOptions =
        "<publish-options><x type='submit' xmlns='jabber:x:data'><field var='FORM_TYPE' type='hidden'>" +
        "<value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='{option}'><value>{value}</value></field>" +
        "</x></publish-options></pubsub></iq>";

    // ejabberd's ids look like rr-<ms>-<number>-<base64 of 20 bytes>-<number>; Prosody's are 64 hex digits.
    private const string EjabberdIdTail = "-97200820";

    private readonly Template[] _templates;

    public PublishTemplates(string componentDomain)
    {
        ArgumentException.ThrowIfNullOrEmpty(componentDomain);
        var to = Xml(componentDomain);
        _templates = new Template[6];
        foreach (var style in Enum.GetValues<PublishStyle>())
        {
            foreach (var registered in (bool[])[false, true])
            {
                var (head, body, options) = style switch
                {
                    PublishStyle.ProsodySummary => (ProsodyHead, ProsodyPublish, ProsodyOptions),
                    PublishStyle.EjabberdSummary => (EjabberdHead, EjabberdSummaryPublish, EjabberdOptions),
                    _ => (EjabberdHead, EjabberdEmptyPublish, EjabberdOptions),
                };
                var text = (head + body + options)
                    .Replace("{to}", to, StringComparison.Ordinal)
                    .Replace("{option}", registered ? "secret" : "pushModule", StringComparison.Ordinal);
                _templates[Slot(style, registered)] = Template.Compile(text, style == PublishStyle.ProsodySummary);
            }
        }
    }

    /// <summary>Pre-encodes an attribute or text value (escaped) for <see cref="Write"/>.</summary>
    public static byte[] Encode(string value) => Encoding.UTF8.GetBytes(Xml(value));

    /// <summary>Appends one publish IQ whose id encodes <paramref name="sequence"/> (see <see cref="TryParseSequence"/>).</summary>
    public void Write(
        IBufferWriter<byte> output, PublishStyle style, bool registered, long sequence, long unixMs,
        ReadOnlySpan<byte> from, ReadOnlySpan<byte> node, ReadOnlySpan<byte> optionValue)
    {
        ArgumentNullException.ThrowIfNull(output);
        var template = _templates[Slot(style, registered)];
        foreach (var part in template.Parts)
        {
            switch (part.Hole)
            {
                case Hole.None: Copy(output, part.Literal); break;
                case Hole.Id when template.ProsodyId: WriteProsodyId(output, sequence); break;
                case Hole.Id: WriteEjabberdId(output, sequence, unixMs); break;
                case Hole.From: Copy(output, from); break;
                case Hole.Node: Copy(output, node); break;
                case Hole.Value: Copy(output, optionValue); break;
            }
        }
    }

    /// <summary>Reads the sequence number back out of an id written by <see cref="Write"/>.</summary>
    public static bool TryParseSequence(ReadOnlySpan<char> id, out long sequence)
    {
        sequence = 0;
        if (id.StartsWith("rr-"))
        {
            // rr-<ms>-<sequence>-<base64>-97200820: base64 has no '-', so the third field is ours.
            var rest = id[3..];
            var dash = rest.IndexOf('-');
            if (dash < 0)
            {
                return false;
            }

            rest = rest[(dash + 1)..];
            dash = rest.IndexOf('-');
            return dash > 0 && long.TryParse(rest[..dash], System.Globalization.NumberStyles.None, null, out sequence);
        }

        return id.Length == 64 && long.TryParse(id[48..], System.Globalization.NumberStyles.AllowHexSpecifier, null, out sequence);
    }

    private static int Slot(PublishStyle style, bool registered) => (int)style * 2 + (registered ? 1 : 0);

    private static string Xml(string value) => System.Security.SecurityElement.Escape(value);

    private static void Copy(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(output.GetSpan(bytes.Length));
        output.Advance(bytes.Length);
    }

    /// <summary>48 hex digits mixed from the sequence (they look random, as Prosody's do) and 16 hex digits of it.</summary>
    private static void WriteProsodyId(IBufferWriter<byte> output, long sequence)
    {
        var span = output.GetSpan(64);
        var x = (ulong)sequence;
        for (var i = 0; i < 3; i++)
        {
            x = Mix(x + (ulong)i + 1);
            Hex(span.Slice(i * 16, 16), x);
        }

        Hex(span.Slice(48, 16), (ulong)sequence);
        output.Advance(64);
    }

    private static void WriteEjabberdId(IBufferWriter<byte> output, long sequence, long unixMs)
    {
        var span = output.GetSpan(96);
        var n = 0;
        "rr-"u8.CopyTo(span);
        n += 3;
        unixMs.TryFormat(span[n..], out var w);
        n += w;
        span[n++] = (byte)'-';
        sequence.TryFormat(span[n..], out w);
        n += w;
        span[n++] = (byte)'-';
        Span<byte> raw = stackalloc byte[20];
        var x = (ulong)sequence;
        for (var i = 0; i < 20; i += 8)
        {
            x = Mix(x + 7);
            BitConverter.TryWriteBytes(raw[i..Math.Min(20, i + 8)], x);
        }

        Base64.EncodeToUtf8(raw, span[n..], out _, out w);
        n += w;
        n += Encoding.ASCII.GetBytes(EjabberdIdTail, span[n..]);
        output.Advance(n);
    }

    private static void Hex(Span<byte> destination, ulong value)
    {
        for (var i = 15; i >= 0; i--)
        {
            destination[i] = (byte)"0123456789abcdef"[(int)(value & 0xF)];
            value >>= 4;
        }
    }

    /// <summary>SplitMix64's finalizer: cheap, and the ids do not look sequential.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
        return z ^ (z >> 31);
    }

    private enum Hole
    {
        None,
        Id,
        From,
        Node,
        Value,
    }

    private readonly record struct Part(Hole Hole, byte[] Literal);

    private sealed record Template(Part[] Parts, bool ProsodyId)
    {
        public static Template Compile(string text, bool prosodyId)
        {
            var parts = new List<Part>();
            var rest = text.AsSpan();
            while (rest.Length > 0)
            {
                var open = rest.IndexOf('{');
                if (open < 0)
                {
                    parts.Add(new Part(Hole.None, Encoding.UTF8.GetBytes(rest.ToString())));
                    break;
                }

                if (open > 0)
                {
                    parts.Add(new Part(Hole.None, Encoding.UTF8.GetBytes(rest[..open].ToString())));
                }

                var close = rest.IndexOf('}');
                var hole = rest[(open + 1)..close] switch
                {
                    "id" => Hole.Id,
                    "from" => Hole.From,
                    "node" => Hole.Node,
                    "value" => Hole.Value,
                    var other => throw new InvalidOperationException("Unknown hole " + other.ToString()),
                };
                parts.Add(new Part(hole, []));
                rest = rest[(close + 1)..];
            }

            return new Template([.. parts], prosodyId);
        }
    }
}
