// Baseline: read one capture page row from D1 and answer a small HTML page
// — the floor for GET /s/{page}, which renders the full page.
export default {
  async fetch(request, env) {
    const row = await env.DB.prepare("SELECT title FROM capture_pages WHERE slug = ?1").bind("demo").first();
    if (row === null) return new Response("no page", { status: 404 });
    const title = String(row.title).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
    return new Response(`<!doctype html><title>${title}</title><h1>${title}</h1>`, {
      headers: { "content-type": "text/html; charset=utf-8" },
    });
  },
};
