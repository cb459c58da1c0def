namespace Monal.Push.Tests;

public sealed class SmokeTests
{
    [Fact]
    public void Solution_Should_Build() => Assert.Equal(4, 2 + 2);
}
