using System.Text;
using BenchmarkDotNet.Attributes;
using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Ingest.Xml;
using Monal.Push.Ledger.Events;

namespace Monal.Push.Benchmarks.Micro;

/// <summary>
/// The in-process steps every publish takes before and after the database, with what each allocates
/// (`dotnet run -c Release --project tests/Monal.Push.Benchmarks -- micro --filter '*PublishPath*'`): reading a real
/// Prosody publish off the component stream into an element, parsing it as a XEP-0357 publish, building the result IQ,
/// and serializing the request event the ledger stores. docs/benchmarks.md, "Where a publish's allocations go".
/// </summary>
[MemoryDiagnoser]
public class PublishPathBenchmarks
{
    private const int Stanzas = 1_000;

    // A publish as Prosody 0.12's mod_cloud_notify sends it (tests/Monal.Push.Tests/Fixtures/Captures/prosody-default.iqs.xml).
    private const string Publish =
        "<iq id='953f48a5e88ce5be526cb075b8b34c32aa07d2966c16734fd1a87170ad76d77b' type='set' from='localhost' to='push.localhost'>" +
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='some-node'><item><notification xmlns='urn:xmpp:push:0'>" +
        "<x xmlns='jabber:x:data' type='form'><field type='hidden' var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>" +
        "<field type='text-single' var='message-count'><value>1</value></field><field type='text-single' var='pending-subscription-count'/>" +
        "<field type='jid-single' var='last-message-sender'/><field type='text-single' var='last-message-body'><value>New Message!</value></field>" +
        "</x></notification></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'>" +
        "<field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
        "<field var='secret'><value>s3cr3t-token</value></field></x></publish-options></pubsub></iq>";

    private const string Header =
        "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='bench' from='localhost'>";

    private byte[] _stream = [];
    private System.Xml.Linq.XElement _iq = null!;
    private PushRequested _requested = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _stream = Encoding.UTF8.GetBytes(Header + string.Concat(Enumerable.Repeat(Publish, Stanzas)));
        using var reader = new StanzaReader(new MemoryStream(_stream), 65_536);
        await reader.ReadHeaderAsync(CancellationToken.None);
        _iq = (await reader.ReadStanzaAsync(CancellationToken.None))!;
        _requested = new PushRequested(Guid.CreateVersion7(), Guid.NewGuid(), "localhost", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1));
    }

    /// <summary>The component stream's reader: bytes to one element per stanza (a thousand per invocation).</summary>
    [Benchmark(OperationsPerInvoke = Stanzas)]
    public async Task<int> ReadStanza()
    {
        using var reader = new StanzaReader(new MemoryStream(_stream), 65_536);
        await reader.ReadHeaderAsync(CancellationToken.None);
        var count = 0;
        for (var i = 0; i < Stanzas; i++)
        {
            count += (await reader.ReadStanzaAsync(CancellationToken.None))?.Name.LocalName.Length ?? 0;
        }

        return count;
    }

    /// <summary>The element as a XEP-0357 publish: node, secret, domains.</summary>
    [Benchmark]
    public PublishRequest? ParsePublish() => PushIq.TryParse(_iq, out var request, out _) ? request : null;

    /// <summary>The result IQ the publish is answered with (serialized by the link's writer afterwards).</summary>
    [Benchmark]
    public System.Xml.Linq.XElement BuildResult() => Iq.Result(_iq);

    /// <summary>The PushRequested event as the ledger stores it (jsonb bytes).</summary>
    [Benchmark]
    public byte[] SerializeRequest() => EventTypes.Serialize(_requested);
}
