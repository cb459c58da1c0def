using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Monal.Push.Purge.Auditing;

/// <summary>Renders a <see cref="RetentionReport"/> as text, JSON or a self-contained HTML page.</summary>
public static class RetentionReportRenderer
{
    /// <summary>Renders the report in the given format.</summary>
    public static string Render(RetentionReport report, ReportFormat format) => format switch
    {
        ReportFormat.Json => Json(report),
        ReportFormat.Html => Html(report),
        _ => Text(report),
    };

    /// <summary>Indented JSON (source-generated).</summary>
    public static string Json(RetentionReport report) => JsonSerializer.Serialize(report, PurgeJson.Default.RetentionReport);

    /// <summary>Plain text for a terminal.</summary>
    public static string Text(RetentionReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var t = new StringBuilder();
        t.AppendLine(CultureInfo.InvariantCulture, $"Retention audit at {Time(report.GeneratedAt)}: {(report.Compliant ? "COMPLIANT" : $"NOT COMPLIANT ({report.Violations.Count} violation(s))")}");
        t.AppendLine();
        t.AppendLine("Inventory");
        t.AppendLine(CultureInfo.InvariantCulture, $"  {"category",-28} {"count",8}  {"oldest",-20} {"age",-10} {"limit",-10} status");
        foreach (var i in report.Inventory)
        {
            t.AppendLine(CultureInfo.InvariantCulture,
                $"  {i.Category,-28} {i.Count,8}  {(i.Oldest is null ? "—" : Time(i.Oldest.Value)),-20} {RetentionAuditor.Describe(i.OldestAge),-10} {(i.Limit is null ? "none" : RetentionAuditor.Describe(i.Limit)),-10} {(i.Compliant ? "ok" : "VIOLATION")}");
        }

        t.AppendLine();
        t.AppendLine(CultureInfo.InvariantCulture, $"Retention runs over the last {RetentionAuditor.RunWindow.TotalDays:0} days");
        foreach (var j in report.Jobs)
        {
            t.AppendLine(CultureInfo.InvariantCulture,
                $"  {j.Job,-16} every {RetentionAuditor.Describe(j.Interval),-8} runs {j.Runs,5}  failed {j.FailedRuns,3}  last {(j.LastRun is null ? "never" : Time(j.LastRun.Value)),-20} longest gap {RetentionAuditor.Describe(j.LongestGap),-10} {(j.OnSchedule ? "ok" : "VIOLATION")}");
        }

        t.AppendLine();
        t.AppendLine(CultureInfo.InvariantCulture,
            $"Personal-data scan: {report.Scan.DatabaseRowsScanned} database rows, {report.Scan.LogFilesScanned} log files ({report.Scan.LogLinesScanned} lines)");
        if (report.Violations.Count > 0)
        {
            t.AppendLine();
            t.AppendLine("Violations");
            foreach (var v in report.Violations)
            {
                t.AppendLine(CultureInfo.InvariantCulture, $"  [{v.Category}] {v.Rule}: {v.Location}: {v.Detail}");
            }
        }

        return t.ToString();
    }

    /// <summary>One HTML page with inline CSS and an SVG chart of data age against the limits, for a non-engineer.</summary>
    public static string Html(RetentionReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var h = new StringBuilder();
        h.Append("""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Monal push: retention audit</title>
            <style>
            body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;color:#1d2430;line-height:1.45;padding:0 1rem}
            h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d5dae1;padding-bottom:.3rem}
            .banner{padding:1rem 1.2rem;border-radius:.5rem;font-size:1.15rem;font-weight:600;margin:1rem 0}
            .ok{background:#e3f4e8;color:#145c2c;border:1px solid #9fd5b0} .bad{background:#fde8e8;color:#8a1c1c;border:1px solid #f1a9a9}
            table{border-collapse:collapse;width:100%;font-size:.95rem} th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e4e7ec}
            th{background:#f4f6f8;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
            .pill{display:inline-block;padding:.1rem .55rem;border-radius:1rem;font-size:.85rem;font-weight:600}
            .pill.ok{border:none} .pill.bad{border:none} .muted{color:#5b6573;font-size:.9rem}
            </style></head><body>
            <h1>Retention audit</h1>
            """);
        h.Append(CultureInfo.InvariantCulture, $"<p class=\"muted\">Monal push server, generated {E(Time(report.GeneratedAt))}</p>");
        h.Append(report.Compliant
            ? "<div class=\"banner ok\">Compliant: nothing is kept longer or in more detail than the privacy policy allows.</div>"
            : $"<div class=\"banner bad\">Not compliant: {report.Violations.Count} problem(s) found. They are listed at the end of this page.</div>");

        h.Append("<h2>How old is the data we keep?</h2><p class=\"muted\">Each bar shows the age of the oldest item of a kind. "
            + "The dashed line is the limit the privacy policy sets. A bar past its line is a problem.</p>");
        h.Append(Chart(report.Inventory.Where(i => i.Limit is not null).ToList()));

        h.Append("<h2>What we hold</h2><table><tr><th>Kind of data</th><th>Items</th><th>Oldest</th><th>Age</th><th>Limit</th><th>Status</th></tr>");
        foreach (var i in report.Inventory)
        {
            h.Append(CultureInfo.InvariantCulture,
                $"<tr><td>{E(i.Description)}</td><td class=\"num\">{i.Count}</td><td>{(i.Oldest is null ? "—" : E(Time(i.Oldest.Value)))}</td>"
                + $"<td>{E(RetentionAuditor.Describe(i.OldestAge))}</td><td>{(i.Limit is null ? "kept while in use" : E(RetentionAuditor.Describe(i.Limit)))}</td>"
                + $"<td>{Pill(i.Compliant)}</td></tr>");
        }

        h.Append("</table>");
        h.Append(
            $"<h2>Did the clean-up jobs run on time?</h2><p class=\"muted\">Over the last {RetentionAuditor.RunWindow.TotalDays:0} days. "
            + "A job is late when it went more than twice its interval without a successful run.</p>");
        h.Append("<table><tr><th>Job</th><th>Runs every</th><th>Successful runs</th><th>Failed runs</th><th>Last run</th><th>Longest gap</th><th>Status</th></tr>");
        foreach (var j in report.Jobs)
        {
            h.Append(CultureInfo.InvariantCulture,
                $"<tr><td>{E(j.Job)}</td><td>{E(RetentionAuditor.Describe(j.Interval))}</td><td class=\"num\">{j.Runs}</td><td class=\"num\">{j.FailedRuns}</td>"
                + $"<td>{(j.LastRun is null ? "never" : E(Time(j.LastRun.Value)))}</td><td>{E(RetentionAuditor.Describe(j.LongestGap))}</td><td>{Pill(j.OnSchedule)}</td></tr>");
        }

        h.Append("</table>");
        h.Append(
            $"<h2>Search for data we must never keep</h2><p>We searched {report.Scan.DatabaseRowsScanned} database rows and {report.Scan.LogFilesScanned} log files "
            + $"({report.Scan.LogLinesScanned} lines) for chat addresses (JIDs), message texts and device tokens in clear. "
            + "Findings say where, never what.</p>");

        h.Append("<h2>Problems</h2>");
        if (report.Violations.Count == 0)
        {
            h.Append("<p>None.</p>");
        }
        else
        {
            h.Append("<table><tr><th>Where</th><th>Rule</th><th>Detail</th></tr>");
            foreach (var v in report.Violations)
            {
                h.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(v.Location)}</td><td>{E(v.Rule)}</td><td>{E(v.Detail)}</td></tr>");
            }

            h.Append("</table>");
        }

        h.Append("</body></html>\n");
        return h.ToString();
    }

    private static string Chart(List<InventoryItem> items)
    {
        const int width = 760, left = 230, barHeight = 26, gap = 16, top = 10;
        var height = top + items.Count * (barHeight + gap) + 30;
        var scale = items.Select(i => Math.Max(i.Limit!.Value.TotalHours * 1.25, i.OldestAge?.TotalHours ?? 0)).DefaultIfEmpty(1).Max();
        scale = Math.Max(scale, 1);
        var span = width - left - 20;
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Age of the oldest data against the limits\">");
        var y = top;
        foreach (var i in items)
        {
            var age = i.OldestAge?.TotalHours ?? 0;
            var bar = age / scale * span;
            var limitX = left + i.Limit!.Value.TotalHours / scale * span;
            var color = i.Compliant ? "#3a9b5c" : "#c93c3c";
            s.Append(CultureInfo.InvariantCulture,
                $"<text x=\"{left - 10}\" y=\"{y + barHeight * 0.68:0.#}\" text-anchor=\"end\" font-size=\"14\" fill=\"#1d2430\">{E(Label(i.Category))}</text>");
            s.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{left}\" y=\"{y}\" width=\"{span}\" height=\"{barHeight}\" fill=\"#f0f2f5\" rx=\"4\"/>");
            s.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{left}\" y=\"{y}\" width=\"{Math.Max(bar, 0):0.#}\" height=\"{barHeight}\" fill=\"{color}\" rx=\"4\"/>");
            s.Append(CultureInfo.InvariantCulture,
                $"<line x1=\"{limitX:0.#}\" x2=\"{limitX:0.#}\" y1=\"{y - 4}\" y2=\"{y + barHeight + 4}\" stroke=\"#1d2430\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/>");
            s.Append(CultureInfo.InvariantCulture,
                $"<text x=\"{left + 6}\" y=\"{y + barHeight * 0.68:0.#}\" font-size=\"13\" fill=\"{(bar > 120 ? "#fff" : "#1d2430")}\">{E(i.OldestAge is null ? "nothing held" : RetentionAuditor.Describe(i.OldestAge))}</text>");
            s.Append(CultureInfo.InvariantCulture,
                $"<text x=\"{Math.Min(limitX + 4, width - 4):0.#}\" y=\"{y + barHeight + 12}\" font-size=\"11\" fill=\"#5b6573\">limit {E(RetentionAuditor.Describe(i.Limit))}</text>");
            y += barHeight + gap;
        }

        s.Append("</svg>");
        return s.ToString();
    }

    private static string Label(string category) => category switch
    {
        "push_events" => "Push history (ledger)",
        "push_log" => "Push log",
        "push_queue" => "Delivery queue",
        "invalidated_devices" => "Invalid tokens waiting",
        "log_files" => "Server log files",
        _ => category,
    };

    private static string Pill(bool ok) => ok ? "<span class=\"pill ok\">OK</span>" : "<span class=\"pill bad\">Problem</span>";

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
