namespace Monal.Push.Cli.Demonstrating;

/// <summary>The demo cannot start or show its push; the message says why and what to do.</summary>
internal sealed class DemoException : Exception
{
    public DemoException()
    {
    }

    public DemoException(string message)
        : base(message)
    {
    }

    public DemoException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
