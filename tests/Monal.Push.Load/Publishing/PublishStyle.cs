namespace Monal.Push.Load.Publishing;

/// <summary>How the publish IQ looks: as Prosody 0.12's mod_cloud_notify or ejabberd 23.01's mod_push send it.</summary>
internal enum PublishStyle
{
    /// <summary><c>type='form'</c> summary with all fields, the dummy body "New Message!".</summary>
    ProsodySummary,

    /// <summary><c>type='submit'</c> summary with labels and only <c>last-message-body</c>.</summary>
    EjabberdSummary,

    /// <summary>An empty <c>&lt;notification xmlns='urn:xmpp:push:0'/&gt;</c> (ejabberd with include_body and include_sender off).</summary>
    EjabberdEmpty,
}
