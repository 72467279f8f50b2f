// Baseline: the platform floor for a smart-link redirect. Answers the same
// 302 a link would, touching no storage.
export default {
  fetch() {
    return new Response(null, {
      status: 302,
      headers: { location: "https://open.spotify.com/album/stagedoor-bench", "cache-control": "no-store" },
    });
  },
};
