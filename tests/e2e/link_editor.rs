//! Smart links made and edited from the dashboard, on each runtime: a link
//! created through the form (after one refused submit that keeps what was
//! typed) is served on `/l/{slug}` and redirects per service; an edited
//! address reaches `/l/{slug}` within the links function's stated
//! staleness; and a second artist's session gets 404 from every editor
//! route and changes nothing.

use std::time::{Duration, Instant};

use crate::cases::{body, Case, Res};
use crate::dashboard::{add_user, form, location, Browser};
use crate::ensure;
use crate::runtime::{Kind, Target};

pub const ALL: &[(&str, Case)] =
    &[("link_editor_create_edit_live_on_l", create_edit_live), ("link_editor_other_artist_gets_404_and_nothing_changes", cross_tenant)];

/// The links function's instance cache (the suite's
/// `instance_cache_seconds`) plus slack: how long a Workers isolate may
/// serve the old definition. Local KV has no propagation delay; Spin reads
/// KV on every request.
const STALE: Duration = Duration::from_secs(crate::runtime::INSTANCE_CACHE_SECONDS + 3);

fn public(t: &Target, path: &str) -> Result<Res, String> {
    t.send("GET", path, &[(t.ip_header(), "198.51.100.251"), ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) e2e-link-editor")], b"")
}

/// A link's stored row, as text, to prove nothing changed.
fn snapshot(t: &Target, slug: &str) -> Result<String, String> {
    t.db()?
        .query_row("SELECT artist_id || '|' || definition || '|' || updated_at FROM links WHERE slug = ?1", [slug], |r| r.get(0))
        .map_err(|e| format!("link {slug}: {e}"))
}

fn create_edit_live(t: &Target) -> Result<(), String> {
    add_user(t, "le-member", "e2e-artist", "links-member@e2e.example", "member")?;
    let mut b = Browser::new(t, "198.51.100.250");
    b.sign_in("links-member@e2e.example")?;
    let csrf = b.csrf()?;
    // Unique per run: local state outlives a run.
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_millis() % 1_000_000_000;
    let slug = format!("e2e-editor-{stamp}");
    let mut fields = vec![
        ("slug", slug.as_str()),
        ("title", "Editor Single"),
        ("t0-platform", "spotify"),
        ("t0-url", "https://www.youtube.com/watch?v=e2e"),
        ("t1-platform", "bandcamp"),
        ("t1-url", "https://e2e.bandcamp.com/album/editor"),
    ];
    let refused = b.post("/app/links/new", &form(&csrf, &fields))?;
    let html = body(&refused);
    ensure!(refused.status() == 422 && html.contains("id=\"err-t0-url\"") && html.contains("spotify.com"), "wrong host: {} {html}", refused.status());
    ensure!(html.contains("value=\"Editor Single\"") && html.contains("value=\"https://e2e.bandcamp.com/album/editor\""), "typed values kept");
    ensure!(t.db()?.query_row("SELECT count(*) FROM links WHERE slug = ?1", [&slug], |r| r.get::<_, i64>(0)).map_err(|e| e.to_string())? == 0, "nothing saved");

    fields[3] = ("t0-url", "https://open.spotify.com/album/e2e-editor");
    let res = b.post("/app/links/new", &form(&csrf, &fields))?;
    ensure!(res.status() == 303 && location(&res) == format!("/app/links/{slug}?saved=created"), "create: {} {}", res.status(), location(&res));
    let page = public(t, &format!("/l/{slug}"))?;
    ensure!(page.status() == 200 && body(&page).contains("Editor Single"), "/l/{slug}: {}", page.status());
    for (platform, to) in [("spotify", "https://open.spotify.com/album/e2e-editor"), ("bandcamp", "https://e2e.bandcamp.com/album/editor")] {
        let res = public(t, &format!("/l/{slug}/{platform}"))?;
        ensure!(res.status() == 302 && location(&res).starts_with(to), "{platform}: {} {}", res.status(), location(&res));
    }

    let edit = body(&b.get(&format!("/app/links/{slug}/edit"))?);
    ensure!(edit.contains("value=\"https://open.spotify.com/album/e2e-editor\""), "the edit form shows the stored address");
    fields.remove(0);
    fields[2] = ("t0-url", "https://open.spotify.com/album/e2e-edited");
    let res = b.post(&format!("/app/links/{slug}/edit"), &form(&csrf, &fields))?;
    ensure!(res.status() == 303 && location(&res) == format!("/app/links/{slug}?saved=updated"), "edit: {} {}", res.status(), location(&res));
    let deadline = Instant::now() + if t.kind == Kind::Spin { Duration::ZERO } else { STALE };
    loop {
        let to = location(&public(t, &format!("/l/{slug}/spotify"))?);
        if to.starts_with("https://open.spotify.com/album/e2e-edited") {
            break;
        }
        ensure!(Instant::now() < deadline, "the edit is not on /l/{slug} after {STALE:?}: still {to}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let list = body(&b.get("/app/links")?);
    ensure!(list.contains(&format!("/l/{slug}")) && list.contains("New smart link"), "listed");
    Ok(())
}

fn cross_tenant(t: &Target) -> Result<(), String> {
    // Artist two probes artist one's fixture link (e2e-db-only).
    add_user(t, "le-other", "e2e-other-artist", "links-other@other.example", "owner")?;
    let mut b = Browser::new(t, "198.51.100.252");
    b.sign_in("links-other@other.example")?;
    let csrf = b.csrf()?;
    let before = snapshot(t, "e2e-db-only")?;
    let res = b.get("/app/links/e2e-db-only/edit")?;
    ensure!(res.status() == 404, "GET edit: {}", res.status());
    let change = form(&csrf, &[("title", "Taken over"), ("t0-platform", "other"), ("t0-url", "https://evil.example/"), ("t0-label", "Free")]);
    let res = b.post("/app/links/e2e-db-only/edit", &change)?;
    ensure!(res.status() == 404, "POST edit: {} {}", res.status(), body(&res));
    let taken = b.post("/app/links/new", &format!("{change}&slug=e2e-db-only"))?;
    ensure!(taken.status() == 409 && body(&taken).contains("id=\"err-slug\""), "artist one's slug: {} {}", taken.status(), body(&taken));
    let list = body(&b.get("/app/links")?);
    ensure!(!list.contains("/l/e2e-db-only"), "not in artist two's list");
    ensure!(snapshot(t, "e2e-db-only")? == before, "artist one's link changed");
    Ok(())
}
