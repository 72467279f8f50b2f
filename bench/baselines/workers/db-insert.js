// Baseline: read the JSON body and write it as one D1 row — the floor for
// a signup, which validates, encrypts and writes more than this.
export default {
  async fetch(request, env) {
    const body = await request.text();
    await env.DB.prepare("INSERT INTO bench_rows (body, at) VALUES (?1, ?2)")
      .bind(body, Date.now())
      .run();
    return new Response('{"status":"ok"}', { headers: { "content-type": "application/json" } });
  },
};
