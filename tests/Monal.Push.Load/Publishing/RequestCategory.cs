namespace Monal.Push.Load.Publishing;

/// <summary>What a generated publish is meant to exercise, so its reply can be judged.</summary>
internal enum RequestCategory : byte
{
    /// <summary>node = 64-hex APNs token, publish-option pushModule (expect result).</summary>
    Stateless,

    /// <summary>node = registered device UUID with its secret (expect result).</summary>
    Registered,

    /// <summary>A registered node with a wrong secret (expect auth/not-authorized).</summary>
    WrongSecret,

    /// <summary>A node nobody registered (expect cancel/item-not-found).</summary>
    UnknownNode,
}
