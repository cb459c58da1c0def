namespace Monal.Push.Tests.Fixtures;

/// <summary>
/// Traffic captured from Prosody 0.12 and ejabberd 23.01 (the *.iqs.xml and *.wire-in.log files), and the stanzas real
/// Monal builds cause (monal-clients.fixtures.xml, read from the sources its fixtures cite; docs/peers.md).
/// </summary>
public static class Captures
{
    public static string Folder => Path.Combine(AppContext.BaseDirectory, "Fixtures", "Captures");

    public static byte[] Read(string name) => File.ReadAllBytes(Path.Combine(Folder, name));

    public static string ReadText(string name) => File.ReadAllText(Path.Combine(Folder, name));

    public static TheoryData<string> Iqs() => Named("*.iqs.xml");

    public static TheoryData<string> WireStreams() => Named("*.wire-in.log");

    public static IEnumerable<string> Names(string pattern) =>
        Directory.GetFiles(Folder, pattern).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal);

    private static TheoryData<string> Named(string pattern)
    {
        var data = new TheoryData<string>();
        foreach (var name in Names(pattern))
        {
            data.Add(name);
        }

        return data;
    }
}
