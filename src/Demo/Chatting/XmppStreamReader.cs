using System.Xml;
using System.Xml.Linq;

namespace Monal.Push.Demo.Chatting;

/// <summary>
/// Reads an XMPP stream one top-level element at a time. Elements are built node by node and returned the moment
/// their end tag is read: XNode.ReadFrom would read on to the next node and block until the peer sends more.
/// </summary>
internal sealed class XmppStreamReader
{
    internal static readonly XNamespace Streams = "http://etherx.jabber.org/streams";
    private const string XmlnsNamespace = "http://www.w3.org/2000/xmlns/";

    private static readonly XmlReaderSettings Settings = new()
    {
        Async = true,
        CloseInput = false,
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        IgnoreComments = true,
        IgnoreProcessingInstructions = true,
    };

    private readonly Stream stream;
    private XmlReader reader;

    public XmppStreamReader(Stream stream)
    {
        this.stream = stream;
        reader = XmlReader.Create(stream, Settings);
    }

    /// <summary>
    /// After SASL success (RFC 6120 §6.4.6) the peer opens a new stream with a new XML declaration. The old reader
    /// has read nothing past the &lt;success/&gt; element, because the peer sends nothing more until we restart.
    /// </summary>
    public void Restart()
    {
        reader.Dispose();
        reader = XmlReader.Create(stream, Settings);
    }

    /// <summary>Reads up to and including the &lt;stream:stream&gt; start tag; returns it without children.</summary>
    public async Task<XElement> ReadStreamHeaderAsync()
    {
        while (await reader.ReadAsync())
        {
            if (reader.NodeType == XmlNodeType.Element)
            {
                var header = StartElement();
                if (header.Name != Streams + "stream")
                {
                    throw new XmlException($"Expected a stream header, got <{header.Name}>.");
                }

                return header;
            }
        }

        throw new EndOfStreamException("The peer closed the connection before its stream header.");
    }

    /// <summary>The next top-level element, or null at &lt;/stream:stream&gt; or end of input.</summary>
    public async Task<XElement?> ReadElementAsync()
    {
        var open = new Stack<XElement>();
        while (await reader.ReadAsync())
        {
            switch (reader.NodeType)
            {
                case XmlNodeType.Element:
                    var element = StartElement();
                    if (open.Count > 0)
                    {
                        open.Peek().Add(element);
                    }

                    if (!reader.IsEmptyElement)
                    {
                        open.Push(element);
                    }
                    else if (open.Count == 0)
                    {
                        return element;
                    }

                    break;
                case XmlNodeType.Text:
                case XmlNodeType.CDATA:
                case XmlNodeType.Whitespace:
                case XmlNodeType.SignificantWhitespace:
                    if (open.Count > 0)
                    {
                        open.Peek().Add(new XText(await reader.GetValueAsync()));
                    }

                    break;
                case XmlNodeType.EndElement:
                    if (open.Count == 0)
                    {
                        return null;
                    }

                    var done = open.Pop();
                    if (open.Count == 0)
                    {
                        return done;
                    }

                    break;
                default:
                    break;
            }
        }

        return null;
    }

    private XElement StartElement()
    {
        var element = new XElement(XName.Get(reader.LocalName, reader.NamespaceURI));
        if (reader.MoveToFirstAttribute())
        {
            do
            {
                if (reader.NamespaceURI != XmlnsNamespace)
                {
                    element.SetAttributeValue(XName.Get(reader.LocalName, reader.NamespaceURI), reader.Value);
                }
            }
            while (reader.MoveToNextAttribute());
            reader.MoveToElement();
        }

        return element;
    }
}
