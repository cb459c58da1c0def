using System.Xml;
using System.Xml.Linq;

namespace Monal.Push.Ingest.Xml;

/// <summary>
/// Reads one XMPP stream: the <c>&lt;stream:stream&gt;</c> header, then each top-level stanza as an
/// <see cref="XElement"/> as soon as its end tag has arrived. XNode.ReadFromAsync cannot be used: it asks the
/// socket for bytes past the end of the stanza and so waits for the next one. This loop builds the element from
/// the reader's nodes itself and returns on the end tag.
/// Restricted XML (RFC 6120 section 11.1: comments, processing instructions, DTDs) ends the stream with
/// <c>restricted-xml</c>; a stanza larger than the byte limit, nested deeper than <see cref="MaxDepth"/> or with an
/// element of more than <see cref="MaxAttributes"/> attributes with <c>policy-violation</c>; bad XML with
/// <c>not-well-formed</c>. The limit is counted in bytes below the parser, so memory stays bounded.
/// </summary>
internal sealed class StanzaReader : IDisposable
{
    /// <summary>
    /// The deepest element nesting a stanza may have (a publish is 8 deep). Building an XElement tree costs time
    /// proportional to its depth for every element added, so 20,000 levels inside the byte limit would cost seconds of
    /// CPU; deeper input ends the stream with <c>policy-violation</c>.
    /// </summary>
    public const int MaxDepth = 64;

    /// <summary>
    /// The most attributes one element may carry (ours carry at most 5). Adding an attribute checks the ones before it,
    /// so thousands of them inside the byte limit cost quadratic time; more end the stream with <c>policy-violation</c>.
    /// </summary>
    public const int MaxAttributes = 64;

    private const string XmlnsNamespace = "http://www.w3.org/2000/xmlns/";

    private readonly ByteCountingStream _input;
    private readonly XmlReader _xml;
    private bool _headerRead;
    private bool _ended;

    public StanzaReader(Stream stream, int maxStanzaBytes)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxStanzaBytes, 1);
        _input = new ByteCountingStream(stream, maxStanzaBytes);
        _xml = XmlReader.Create(_input, new XmlReaderSettings
        {
            Async = true,
            // The stream is one document whose root is <stream:stream>; it stays open for the link's lifetime.
            ConformanceLevel = ConformanceLevel.Document,
            DtdProcessing = DtdProcessing.Prohibit,
            XmlResolver = null,
            IgnoreComments = false,
            IgnoreProcessingInstructions = false,
            IgnoreWhitespace = false,
            CheckCharacters = true,
            CloseInput = false,
        });
    }

    /// <summary>Bytes read from the peer since the start, including read-ahead.</summary>
    public long TotalBytes => _input.TotalBytes;

    /// <summary>Reads up to and including the opening stream tag.</summary>
    /// <exception cref="StreamErrorException">The stream must be closed with this condition.</exception>
    /// <exception cref="EndOfStreamException">The peer closed the connection first.</exception>
    public async ValueTask<StreamHeader> ReadHeaderAsync(CancellationToken cancellationToken)
    {
        if (_headerRead)
        {
            throw new InvalidOperationException("The stream header was already read.");
        }

        while (await ReadNodeAsync(cancellationToken))
        {
            switch (_xml.NodeType)
            {
                case XmlNodeType.XmlDeclaration:
                case XmlNodeType.Whitespace:
                    continue;
                case XmlNodeType.Comment:
                case XmlNodeType.ProcessingInstruction:
                case XmlNodeType.DocumentType:
                    throw new StreamErrorException(StreamErrorConditions.RestrictedXml);
                case XmlNodeType.Element:
                    if (_xml.LocalName != "stream" || _xml.NamespaceURI != StreamHeader.StreamsNamespace)
                    {
                        throw new StreamErrorException(StreamErrorConditions.InvalidNamespace);
                    }

                    var header = new StreamHeader(
                        _xml.GetAttribute("id"), _xml.GetAttribute("from"), _xml.GetAttribute("to"), _xml.GetAttribute("xmlns"));
                    _headerRead = true;
                    _ended = _xml.IsEmptyElement;
                    _input.CapturingProlog = false;
                    _input.ResetCount();
                    return header;
                default:
                    throw new StreamErrorException(StreamErrorConditions.NotWellFormed);
            }
        }

        throw new EndOfStreamException("The peer closed the connection before opening its stream.");
    }

    /// <summary>Reads the next top-level stanza, or returns null once the peer has closed its stream.</summary>
    /// <exception cref="StreamErrorException">The stream must be closed with this condition.</exception>
    /// <exception cref="EndOfStreamException">The connection closed in the middle of the stream.</exception>
    public async ValueTask<XElement?> ReadStanzaAsync(CancellationToken cancellationToken)
    {
        if (!_headerRead)
        {
            throw new InvalidOperationException("Read the stream header first.");
        }

        if (_ended)
        {
            return null;
        }

        XElement? open = null;
        var depth = 0;
        while (await ReadNodeAsync(cancellationToken))
        {
            switch (_xml.NodeType)
            {
                case XmlNodeType.Element:
                    var element = ReadElement();
                    open?.Add(element);
                    if (!_xml.IsEmptyElement)
                    {
                        open = element;
                        if (++depth > MaxDepth)
                        {
                            throw new StreamErrorException(StreamErrorConditions.PolicyViolation);
                        }
                    }
                    else if (open is null)
                    {
                        return Completed(element);
                    }

                    break;
                case XmlNodeType.EndElement:
                    if (open is null)
                    {
                        // </stream:stream> (RFC 6120 section 4.4).
                        _ended = true;
                        return null;
                    }

                    if (open.Parent is null)
                    {
                        return Completed(open);
                    }

                    open = open.Parent;
                    depth--;
                    break;
                case XmlNodeType.Text:
                case XmlNodeType.CDATA:
                case XmlNodeType.Whitespace:
                case XmlNodeType.SignificantWhitespace:
                    var text = await ReadValueAsync();
                    if (open is not null)
                    {
                        open.Add(new XText(text));
                    }
                    else if (string.IsNullOrWhiteSpace(text))
                    {
                        // Whitespace keepalives between stanzas must not eat into the next stanza's budget.
                        _input.ResetCount();
                    }

                    // Other character data between stanzas has no meaning; it is dropped but stays counted.
                    break;
                case XmlNodeType.Comment:
                case XmlNodeType.ProcessingInstruction:
                case XmlNodeType.DocumentType:
                case XmlNodeType.EntityReference:
                    throw new StreamErrorException(StreamErrorConditions.RestrictedXml);
                default:
                    throw new StreamErrorException(StreamErrorConditions.NotWellFormed);
            }
        }

        _ended = true;
        return null;
    }

    public void Dispose() => _xml.Dispose();

    private XElement Completed(XElement stanza)
    {
        _input.ResetCount();
        return stanza;
    }

    private XElement ReadElement()
    {
        var element = new XElement(XName.Get(_xml.LocalName, _xml.NamespaceURI));
        if (_xml.AttributeCount > MaxAttributes)
        {
            throw new StreamErrorException(StreamErrorConditions.PolicyViolation);
        }

        if (_xml.MoveToFirstAttribute())
        {
            do
            {
                // Namespace declarations are already in the XNames; XElement writes its own on output.
                if (_xml.NamespaceURI != XmlnsNamespace)
                {
                    element.Add(new XAttribute(XName.Get(_xml.LocalName, _xml.NamespaceURI), _xml.Value));
                }
            }
            while (_xml.MoveToNextAttribute());

            _xml.MoveToElement();
        }

        return element;
    }

    private async ValueTask<bool> ReadNodeAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _input.ReadCancellation = cancellationToken;
        try
        {
            return await _xml.ReadAsync();
        }
        catch (XmlException e)
        {
            throw Translate(e);
        }
        catch (InvalidOperationException e) when (_input.LimitExceeded || _input.EndOfInput)
        {
            // XmlReader reports a read after its own failure this way.
            throw Translate(e);
        }
    }

    // The text of a node is decoded lazily: bad bytes inside it surface here, not in ReadAsync.
    private async ValueTask<string> ReadValueAsync()
    {
        try
        {
            return await _xml.GetValueAsync();
        }
        catch (XmlException e)
        {
            throw Translate(e);
        }
        catch (InvalidOperationException e) when (_input.LimitExceeded || _input.EndOfInput)
        {
            throw Translate(e);
        }
    }

    private Exception Translate(Exception e)
    {
        if (_input.LimitExceeded)
        {
            return new StreamErrorException(StreamErrorConditions.PolicyViolation, e);
        }

        if (_input.EndOfInput)
        {
            return new EndOfStreamException("The peer closed the connection in the middle of the stream.", e);
        }

        if (!_headerRead && _input.PrologContainsDoctype())
        {
            return new StreamErrorException(StreamErrorConditions.RestrictedXml, e);
        }

        return new StreamErrorException(StreamErrorConditions.NotWellFormed, e);
    }
}
