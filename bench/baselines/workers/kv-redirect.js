// Baseline: read the redirect target from KV, then answer 302 — the floor
// for a link whose definition lives in KV. PUT stores the target (setup).
const KEY = "bench:redirect";

export default {
  async fetch(request, env) {
    if (request.method === "PUT") {
      await env.KV.put(KEY, await request.text());
      return new Response(null, { status: 204 });
    }
    const target = await env.KV.get(KEY);
    if (target === null) return new Response("no target", { status: 404 });
    return new Response(null, { status: 302, headers: { location: target, "cache-control": "no-store" } });
  },
};
