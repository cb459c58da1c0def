using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Logging;
using Monal.Push.Ingest.Limiting;
using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ledger.Crypto;

namespace Monal.Push.Ingest.Registering;

/// <summary>
/// mod_push_appserver's HTTP v1 API, which older Monal versions call: <c>POST /v1/register</c> (form fields type,
/// node, token) answers <c>OK\n&lt;node&gt;\n&lt;secret&gt;</c>, <c>POST /v1/unregister</c> (type, node) answers
/// <c>OK\n</c>, both also under <c>/push_appserver/v1/</c> where mod_push_appserver serves them. Refusals are
/// <c>ERROR\n&lt;text&gt;</c>: 400 for bad input, 404 for an unknown node, 503 while storage is unavailable, 429 when
/// the client network is over a limit (requests per minute, or its new-device quota; docs/operators.md "Limits").
/// </summary>
public static class RegistrationEndpoints
{
    /// <summary>mod_push_appserver refuses bodies above 4 KB; a v1 form is far smaller.</summary>
    private const int MaxBody = 4096;

    private static readonly FormOptions Limits = new()
    {
        BufferBodyLengthLimit = MaxBody,
        MultipartBodyLengthLimit = MaxBody,
        ValueCountLimit = 16,
        KeyLengthLimit = 64,
        ValueLengthLimit = MaxBody,
    };

    /// <summary>
    /// The rate limiter and request timeout policy of these endpoints (issue 18): registered by
    /// <see cref="IngestServiceCollectionExtensions.AddIngest"/>, enforced where the host adds
    /// <c>UseRateLimiter()</c> and <c>UseRequestTimeouts()</c> (after <c>UseForwardedHeaders()</c>, so that the
    /// client behind a trusted reverse proxy is the one limited).
    /// </summary>
    public const string Policy = "registration";

    /// <summary>Maps the v1 registration endpoints (needs <see cref="IngestServiceCollectionExtensions.AddIngest"/>).</summary>
    public static IEndpointRouteBuilder MapRegistration(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        foreach (var prefix in (string[])["/v1", "/push_appserver/v1"])
        {
            endpoints.MapPost(prefix + "/register", RegisterAsync).RequireRateLimiting(Policy).WithRequestTimeout(Policy);
            endpoints.MapPost(prefix + "/unregister", UnregisterAsync).RequireRateLimiting(Policy).WithRequestTimeout(Policy);
        }

        return endpoints;
    }

    /// <summary>
    /// Partitions registration requests by client network (an IPv4 address, an IPv6 /64): a token bucket each, from
    /// <c>Limits:Http</c>. In memory only; idle partitions are dropped by the limiter itself.
    /// </summary>
    internal static void AddRegistrationPolicy(RateLimiterOptions options, LimitsOptions limits)
    {
        var perMinute = limits.Http.RequestsPerMinute;
        // The limiter adds whole tokens per period: one period per second when that is at least a token, else longer.
        var (tokens, period) = perMinute >= 60
            ? ((perMinute + 59) / 60, TimeSpan.FromSeconds(1))
            : (1, TimeSpan.FromSeconds(60.0 / perMinute));
        options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
        options.AddPolicy(Policy, context => RateLimitPartition.GetTokenBucketLimiter(
            QuotaSubject.ClientNetwork(context.Connection.RemoteIpAddress),
            _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = limits.Http.RequestBurst,
                TokensPerPeriod = tokens,
                ReplenishmentPeriod = period,
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
        options.OnRejected = async (rejected, ct) =>
        {
            var services = rejected.HttpContext.RequestServices;
            services.GetRequiredService<IngestMetrics>().Limit(LimitKind.HttpRequests, allowed: false);
            var notices = services.GetRequiredService<HttpLimitNotices>();
            if (notices.Notices.ShouldLog("http", out var refused))
            {
                Log.HttpClientLimited(notices.Logger, LimitKind.HttpRequests.Tag(), refused, "Limits:Http:RequestsPerMinute, Limits:Http:RequestBurst");
            }

            rejected.HttpContext.Response.Headers.RetryAfter = ((int)Math.Ceiling(period.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            await WriteAsync(rejected.HttpContext, StatusCodes.Status429TooManyRequests, "ERROR\nToo many requests, try again later!\n", ct);
        };
    }

    private static Task RegisterAsync(HttpContext context) =>
        HandleAsync(context, "register", (handler, form, ct) =>
            handler.RegisterAsync(form["type"], form["node"], form["token"], domain: null, "http", ct,
                QuotaSubject.Client(context.Connection.RemoteIpAddress, context.RequestServices.GetRequiredService<KeyedHash>())));

    private static Task UnregisterAsync(HttpContext context) =>
        HandleAsync(context, "unregister", (handler, form, ct) =>
            handler.UnregisterAsync(form["type"], form["node"], domain: null, "http", ct));

    private static async Task HandleAsync(
        HttpContext context, string action, Func<RegistrationHandler, IFormCollection, CancellationToken, Task<RegistrationReply>> run)
    {
        var ct = context.RequestAborted;
        var handler = context.RequestServices.GetRequiredService<RegistrationHandler>();
        if (context.Request.ContentLength > MaxBody || !context.Request.HasFormContentType)
        {
            await WriteAsync(context, StatusCodes.Status400BadRequest, "ERROR\nMissing parameters!\n", ct);
            return;
        }

        RegistrationReply reply;
        try
        {
            var form = await context.Request.ReadFormAsync(Limits, ct);
            reply = await run(handler, form, ct);
        }
        catch (InvalidDataException)
        {
            // Over a form limit, or not a form after all.
            await WriteAsync(context, StatusCodes.Status400BadRequest, "ERROR\nMissing parameters!\n", ct);
            return;
        }
        catch (Exception e) when (PublishHandler.IsStorageFailure(e, ct))
        {
            var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(RegistrationEndpoints));
            Log.StorageUnavailable(logger, action, e.GetType().Name);
            context.Response.Headers.RetryAfter = "30";
            await WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "ERROR\nStorage unavailable, try again later!\n", ct);
            return;
        }

        var result = reply.Result;
        if (reply.Failure == RegistrationFailure.QuotaUsed)
        {
            context.Response.Headers.RetryAfter = "600";
            await WriteAsync(context, StatusCodes.Status429TooManyRequests, "ERROR\n" + result.ErrorText + "\n", ct);
            return;
        }

        if (!result.Succeeded)
        {
            var status = reply.Failure == RegistrationFailure.NotFound ? StatusCodes.Status404NotFound : StatusCodes.Status400BadRequest;
            await WriteAsync(context, status, "ERROR\n" + result.ErrorText + "\n", ct);
            return;
        }

        var body = action == "register" ? $"OK\n{result.Node}\n{result.Secret}" : "OK\n";
        await WriteAsync(context, StatusCodes.Status200OK, body, ct);
    }

    private static async Task WriteAsync(HttpContext context, int status, string body, CancellationToken ct)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        await context.Response.WriteAsync(body, ct);
    }
}
