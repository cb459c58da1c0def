using System.Xml.Linq;

namespace Monal.Push.Ingest.Stanzas;

/// <summary>XEP-0004 data forms: reading single values and building forms.</summary>
internal static class DataForm
{
    public static readonly XName Name = XName.Get("x", Namespaces.DataForms);
    private static readonly XName FieldName = XName.Get("field", Namespaces.DataForms);
    private static readonly XName ValueName = XName.Get("value", Namespaces.DataForms);

    /// <summary>The first value of field <paramref name="var"/>, or null when absent or empty.</summary>
    public static string? Value(XElement form, string var)
    {
        var field = form.Elements(FieldName).FirstOrDefault(f => (string?)f.Attribute("var") == var);
        var value = field?.Element(ValueName)?.Value;
        return string.IsNullOrEmpty(value) ? null : value;
    }

    public static XElement Build(string type, params (string Var, string Type, string? Value)[] fields)
    {
        var form = new XElement(Name, new XAttribute("type", type));
        foreach (var (var, fieldType, value) in fields)
        {
            var field = new XElement(FieldName, new XAttribute("var", var), new XAttribute("type", fieldType));
            if (value is not null)
            {
                field.Add(new XElement(ValueName, value));
            }

            form.Add(field);
        }

        return form;
    }
}
