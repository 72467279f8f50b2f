//! Capture pages managed from the dashboard, on each runtime: a page made
//! through the forms is live on `/s/{slug}`, a fan signs up, the consent
//! text changes (a new version), the change reaches the public page within
//! signup's cache time, the first fan's evidence still names v1 with v1's
//! text while a new fan gets v2; and a second artist's session gets 404
//! from every page route and changes nothing.

use std::time::{Duration, Instant};

use crate::cases::{body, Case};
use crate::dashboard::{add_user, fan_id, form, location, signup, Browser};
use crate::ensure;
use crate::runtime::{Kind, Target};

pub const ALL: &[(&str, Case)] =
    &[("pages_create_edit_consent_keeps_old_version", create_edit_consent), ("pages_other_artist_gets_404_and_nothing_changes", cross_tenant)];

const V1: &str = "Email me news from E2E Band & friends.";
const V2: &str = "Email me news and presale codes from E2E Band.";
/// Signup's page cache (the suite's `instance_cache_seconds`) plus slack:
/// how long a Workers isolate may show the old page.
const STALE: Duration = Duration::from_secs(crate::runtime::INSTANCE_CACHE_SECONDS + 3);

/// The evidence of a fan's first consent event: (version, hash).
fn evidence(t: &Target, fan: &str) -> Result<(String, String), String> {
    t.db()?
        .query_row("SELECT consent_version, consent_hash FROM consent_events WHERE fan_id = ?1 ORDER BY at, id LIMIT 1", [fan], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| format!("evidence of {fan}: {e}"))
}

/// A page's row and its versions on record, as text, to prove nothing changed.
fn snapshot(t: &Target, page: &str) -> Result<String, String> {
    let db = t.db()?;
    let row: String = db
        .query_row(
            "SELECT slug || '|' || title || '|' || consent_text || '|' || consent_version || '|' || double_opt_in || '|' || coalesce(thanks_text, '') || '|' || coalesce(redirect_url, '') || '|' || updated_at FROM capture_pages WHERE id = ?1",
            [page],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    let mut st = db.prepare("SELECT version || '|' || consent_text FROM consent_versions WHERE page_id = ?1 ORDER BY version").map_err(|e| e.to_string())?;
    let versions: Vec<String> = st.query_map([page], |r| r.get(0)).map_err(|e| e.to_string())?.collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    Ok(format!("{row}\n{}", versions.join("\n")))
}

fn create_edit_consent(t: &Target) -> Result<(), String> {
    // A member: both roles manage pages.
    add_user(t, "pg-member", "e2e-artist", "pages-member@e2e.example", "member")?;
    let mut b = Browser::new(t, "198.51.100.240");
    b.sign_in("pages-member@e2e.example")?;
    let csrf = b.csrf()?;
    // Unique per run: local state outlives a run.
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_millis() % 1_000_000_000;
    let slug = format!("e2e-pages-{stamp}");

    let refused =
        b.post("/app/pages/new", &form(&csrf, &[("slug", &slug), ("title", "Presale list"), ("consent_text", V1), ("redirect_url", "http://e2e.example/")]))?;
    ensure!(refused.status() == 422, "http redirect: {} {}", refused.status(), body(&refused));
    let html = body(&refused);
    ensure!(html.contains("id=\"err-redirect_url\"") && html.contains("value=\"Presale list\""), "refused form keeps the typed values: {html}");

    let res = b.post("/app/pages/new", &form(&csrf, &[("slug", &slug), ("title", "Presale list"), ("consent_text", V1)]))?;
    ensure!(res.status() == 303, "create: {} {}", res.status(), body(&res));
    let to = location(&res);
    let id = to.strip_prefix("/app/pages/").and_then(|r| r.strip_suffix("?did=created")).ok_or_else(|| format!("created → {to}"))?.to_owned();
    let detail = body(&b.get(&to)?);
    ensure!(detail.contains(&format!("page: &quot;{slug}&quot;")) && detail.contains("/api/v1/signup"), "snippet on the page: {detail}");
    let preview = b.get(&format!("/app/pages/{id}/preview"))?;
    let csp = preview.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    ensure!(preview.status() == 200 && csp.contains("frame-ancestors 'self'") && csp.contains("sandbox"), "preview: {} {csp}", preview.status());
    ensure!(body(&preview).contains("E2E Band &amp; friends."), "preview renders the page");

    let public = t.send("GET", &format!("/s/{slug}"), &[(t.ip_header(), "198.51.100.241")], b"")?;
    ensure!(public.status() == 200 && body(&public).contains("E2E Band &amp; friends."), "live at /s/{slug}: {}", public.status());
    signup(t, "198.51.100.241", &slug, "pages-fan-1@example.com")?;
    let first = fan_id(t, "e2e-artist", "pages-fan-1@example.com")?;
    let (h1, h2) = (shared::crypto::sha256_hex(V1.as_bytes()), shared::crypto::sha256_hex(V2.as_bytes()));
    ensure!(evidence(t, &first)? == ("v1".to_owned(), h1.clone()), "first fan's evidence: {:?}", evidence(t, &first));

    let res = b.post(&format!("/app/pages/{id}/edit"), &form(&csrf, &[("title", "Presale list"), ("consent_text", V2)]))?;
    ensure!(res.status() == 303 && location(&res).ends_with("?did=new-version"), "edit: {} {}", res.status(), location(&res));
    // Spin serves every request from a fresh instance; a Workers isolate
    // may keep the old page for signup's cache time.
    let deadline = Instant::now() + if t.kind == Kind::Spin { Duration::ZERO } else { STALE };
    loop {
        let page = t.send("GET", &format!("/s/{slug}"), &[(t.ip_header(), "198.51.100.242")], b"")?;
        if body(&page).contains("presale codes") {
            break;
        }
        ensure!(Instant::now() < deadline, "the edit is not on /s/{slug} after {STALE:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    signup(t, "198.51.100.243", &slug, "pages-fan-2@example.com")?;
    let second = fan_id(t, "e2e-artist", "pages-fan-2@example.com")?;
    ensure!(evidence(t, &second)? == ("v2".to_owned(), h2), "new fan's evidence: {:?}", evidence(t, &second));
    ensure!(evidence(t, &first)? == ("v1".to_owned(), h1), "first fan's evidence changed: {:?}", evidence(t, &first));
    let kept = snapshot(t, &id)?;
    ensure!(kept.ends_with(&format!("v1|{V1}\nv2|{V2}")), "versions on record: {kept}");

    for (fan, text, version) in [(&first, V1, "v1"), (&second, V2, "v2")] {
        let doc: serde_json::Value = serde_json::from_slice(b.get(&format!("/api/v1/app/fans/{fan}/export"))?.body()).map_err(|e| e.to_string())?;
        let event = &doc["consent_history"][0];
        ensure!(event["consent_version"] == version && event["consent_text"] == text && event["consent_text_held"] == true, "{version} fan's export: {event}");
    }
    let detail = body(&b.get(&format!("/app/pages/{id}"))?);
    ensure!(detail.contains("<td>v1</td>") && detail.contains("<td>v2</td>"), "version history on the page");
    Ok(())
}

fn cross_tenant(t: &Target) -> Result<(), String> {
    // Artist two probes artist one's fixture page by its id.
    add_user(t, "pg-other", "e2e-other-artist", "pages-other@other.example", "owner")?;
    let mut b = Browser::new(t, "198.51.100.244");
    b.sign_in("pages-other@other.example")?;
    let csrf = b.csrf()?;
    let before = snapshot(t, "e2e-page")?;
    for path in ["/app/pages/e2e-page", "/app/pages/e2e-page/edit", "/app/pages/e2e-page/preview"] {
        let res = b.get(path)?;
        ensure!(res.status() == 404, "GET {path}: {}", res.status());
    }
    let change = form(&csrf, &[("title", "Taken over"), ("consent_text", "Taken over."), ("redirect_url", "https://evil.example/")]);
    for path in ["/app/pages/e2e-page/edit", "/app/pages/e2e-page/preview"] {
        let res = b.post(path, &change)?;
        ensure!(res.status() == 404 && !body(&res).contains("E2E list"), "POST {path}: {}", res.status());
    }
    let taken = b.post("/app/pages/new", &form(&csrf, &[("slug", "e2e"), ("title", "Taken over"), ("consent_text", "Taken over.")]))?;
    ensure!(taken.status() == 409 && body(&taken).contains("is taken"), "artist one's slug: {} {}", taken.status(), body(&taken));
    let list = body(&b.get("/app/pages")?);
    ensure!(list.contains("/s/e2e-other") && !list.contains("/s/e2e<") && !list.contains("E2E list"), "list shows only their pages");
    ensure!(snapshot(t, "e2e-page")? == before, "artist one's page changed");
    Ok(())
}
