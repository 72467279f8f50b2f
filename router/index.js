// Stagedoor's front door on Workers when every route shares one hostname
// (always the case in local dev). It forwards by path prefix to each
// function's own Worker over a service binding and does nothing else:
// no parsing, no logging, no state. In production each function can
// instead be given its own zone route and this Worker skipped entirely
// (see docs/ARCHITECTURE.md).

const ROUTES = [
  ["/s/", "SIGNUP"],
  ["/api/v1/signup", "SIGNUP"],
  ["/u/", "UNSUBSCRIBE"],
  ["/l/", "LINKS"],
  // The links API is the links crate's code, served by the studio so the
  // links Worker stays small (README "Smart links").
  ["/api/v1/app/links", "STUDIO", true],
  ["/api/v1/app/links/", "STUDIO"],
  // The studio's pages (functions/studio), before the dashboard's /app/.
  ["/app/overview", "STUDIO", true],
  ["/app/pages", "STUDIO", true],
  ["/app/pages/", "STUDIO"],
  ["/app/links", "STUDIO", true],
  ["/app/links/", "STUDIO"],
  // After the links API: every other artist route is the dashboard's.
  ["/api/v1/app/", "DASHBOARD"],
  ["/app/", "DASHBOARD"],
  ["/app", "DASHBOARD", true],
  // Fans' privacy page and self-service requests.
  ["/privacy/", "DASHBOARD"],
  // Email providers' bounce and complaint webhooks.
  ["/hooks/", "WEBHOOKS"],
];

export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    for (const [prefix, binding, exact] of ROUTES) {
      if (path === prefix || (!exact && path.startsWith(prefix))) {
        // Hand the edge's request metadata (country, region, city…) on:
        // the function derives the fan's approximate location from it.
        return env[binding].fetch(request, { cf: request.cf });
      }
    }
    return new Response("Not found", {
      status: 404,
      headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" },
    });
  },
};
