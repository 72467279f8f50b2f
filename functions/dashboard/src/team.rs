//! The workspace's people and API tokens. Owners invite and remove
//! members, require a second factor for everyone, and manage the API
//! tokens of the links API; members see the team list.

use maud::html;
use shared::auth::{self, Role};
use shared::email::Email;
use shared::http::StatusCode;
use shared::mail::{self, Message};
use shared::sql::Param;
use shared::{crypto, Env, Error, ErrorKind, Response};

use crate::view::{self, Nav};
use crate::{not_found, Ctx};

struct Member {
    id: String,
    email: String,
    role: String,
    totp: bool,
    last_sign_in: Option<i64>,
}

async fn members<E: Env>(ctx: &Ctx<'_, E>) -> Result<Vec<Member>, Error> {
    let rows =
        ctx.db.query("SELECT id, email_enc, role, totp_enc IS NOT NULL, last_sign_in_at FROM users WHERE artist_id = ?1 ORDER BY created_at, id", &[]).await?;
    let context = format!("user.email:{}", ctx.db.artist_id());
    rows.into_iter()
        .map(|mut r| {
            let enc = r.take_text(1).unwrap_or_default();
            let email = String::from_utf8(ctx.keys.decrypt(&enc, context.as_bytes())?).map_err(Error::internal)?;
            Ok(Member {
                id: r.take_text(0).unwrap_or_default(),
                email,
                role: r.take_text(2).unwrap_or_default(),
                totp: r.int(3) == Some(1),
                last_sign_in: r.int(4),
            })
        })
        .collect()
}

pub async fn list<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    render(ctx, None, "", StatusCode::OK).await
}

async fn render<E: Env>(ctx: &Ctx<'_, E>, error: Option<&str>, typed: &str, status: StatusCode) -> Result<Response, Error> {
    let people = members(ctx).await?;
    let owner = ctx.session.role == Role::Owner;
    let notice = crate::account::notice(ctx.parts);
    let body = html! {
        h1 { "Team" }
        @if let Some(n) = notice { p.ok role="status" { (n) } }
        div.table { table {
            thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Second factor" } th scope="col" { "Last sign-in" } @if owner { th scope="col" { span.muted { "Actions" } } } } }
            tbody { @for m in &people { tr {
                td.email { (m.email) @if m.id == ctx.session.user_id { " " span.muted { "(you)" } } }
                td { (m.role) }
                td { @if m.totp { "on" } @else { "off" } }
                td { (view::datetime(m.last_sign_in)) }
                @if owner { td { @if m.id != ctx.session.user_id {
                    form method="post" action={ "/app/team/" (m.id) "/remove" } {
                        (view::csrf_field(&ctx.session.csrf))
                        button.secondary type="submit" aria-label={ "Remove " (m.email) } { "Remove" }
                    }
                } } }
            } } }
        } }
        @if owner {
            h2 { "Invite someone" }
            form method="post" action="/app/team" novalidate {
                (view::csrf_field(&ctx.session.csrf))
                label for="invite-email" { "Email" }
                input #invite-email type="email" name="email" value=(typed) required aria-describedby=[error.map(|_| "invite-error")];
                @if let Some(e) = error { p #invite-error .err role="alert" { (e) } }
                label for="role" { "Role" }
                select #role name="role" { option value="member" { "Member: sees fans, exports them" } option value="owner" { "Owner: also manages the team, tokens and fans" } }
                button type="submit" { "Send invitation" }
            }
            h2 { "Second factor" }
            form method="post" action="/app/team/require-second-factor" {
                (view::csrf_field(&ctx.session.csrf))
                @if ctx.session.require_totp {
                    p { "Everyone in this workspace must use an authenticator app to sign in." }
                    input type="hidden" name="require" value="0";
                    button.secondary type="submit" { "Stop requiring it" }
                } @else {
                    p { "Require everyone in this workspace to use an authenticator app to sign in. Those without one set it up at their next page view." }
                    input type="hidden" name="require" value="1";
                    button type="submit" { "Require a second factor" }
                }
            }
        }
    };
    Ok(view::html_response(status, view::app_page(&ctx.session, Nav::Team, "Team", body)))
}

pub async fn invite<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    ctx.require_owner()?;
    let typed = ctx.form.get("email").unwrap_or("").trim();
    let role = ctx.form.get("role").and_then(Role::parse).unwrap_or(Role::Member);
    let email = match Email::parse(typed) {
        Ok(e) => e,
        Err(e) => return render(ctx, Some(e.message()), typed, StatusCode::UNPROCESSABLE_ENTITY).await,
    };
    let id = shared::env::random_id(ctx.env)?;
    let enc = ctx.keys.encrypt(email.as_str().as_bytes(), format!("user.email:{}", ctx.db.artist_id()).as_bytes())?;
    let added = ctx
        .db
        .execute(
            "INSERT OR IGNORE INTO users (id, artist_id, email_enc, email_hash, role, created_at) VALUES (?2, ?1, ?3, ?4, ?5, ?6)",
            &[Param::Text(&id), Param::Text(&enc), Param::Text(&auth::user_index(&ctx.keys, &email)), Param::Text(role.as_str()), Param::Int(ctx.env.now_ms())],
        )
        .await?;
    if added == 0 {
        return render(
            ctx,
            Some("This address already has a Stagedoor account (each address belongs to one workspace). Ask them to use another address."),
            typed,
            StatusCode::CONFLICT,
        )
        .await;
    }
    let sign_in = format!("{}/app/sign-in", mail::base_url(ctx.env)?);
    let artist = &ctx.session.artist_name;
    let text = format!("You've been added to {artist}'s Stagedoor dashboard. Sign in with this address at {sign_in}\n");
    let html = format!(
        "<p>You've been added to {}'s Stagedoor dashboard.</p><p><a href=\"{}\">Sign in</a> with this address.</p>",
        shared::html::escape(artist),
        shared::html::escape(&sign_in)
    );
    let subject = format!("You've been added to {artist} on Stagedoor");
    mail::send_later(ctx.env, &Message { to: email.as_str(), subject: &subject, text: &text, html: &html, unsubscribe: None }, Vec::new())?;
    Ok(view::redirect("/app/team?done=invited"))
}

pub async fn remove<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    ctx.require_owner()?;
    let rows = ctx
        .db
        .query(
            "SELECT role, (SELECT count(*) FROM users WHERE artist_id = ?1 AND role = 'owner') FROM users WHERE artist_id = ?1 AND id = ?2",
            &[Param::Text(id)],
        )
        .await?;
    let row = rows.first().ok_or_else(not_found)?;
    if id == ctx.session.user_id || (row.text(0) == Some("owner") && row.int(1).unwrap_or(0) <= 1) {
        return Err(Error::new(ErrorKind::Conflict, "You can't remove yourself or the last owner. Make someone else an owner first."));
    }
    ctx.db
        .batch(&[
            ("DELETE FROM sessions WHERE artist_id = ?1 AND user_id = ?2", &[Param::Text(id)]),
            ("DELETE FROM recovery_codes WHERE user_id IN (SELECT id FROM users WHERE artist_id = ?1 AND id = ?2)", &[Param::Text(id)]),
            ("DELETE FROM sign_in_links WHERE user_id IN (SELECT id FROM users WHERE artist_id = ?1 AND id = ?2)", &[Param::Text(id)]),
            ("DELETE FROM users WHERE artist_id = ?1 AND id = ?2", &[Param::Text(id)]),
        ])
        .await?;
    Ok(view::redirect("/app/team?done=removed"))
}

pub async fn require_totp<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    ctx.require_owner()?;
    let on = ctx.form.get("require") == Some("1");
    ctx.db
        .execute(
            "INSERT INTO artist_settings (artist_id, require_totp) VALUES (?1, ?2) ON CONFLICT (artist_id) DO UPDATE SET require_totp = excluded.require_totp",
            &[Param::from(on)],
        )
        .await?;
    Ok(view::redirect("/app/team?done=saved"))
}

struct Token {
    id: String,
    label: String,
    created_at: i64,
    revoked_at: Option<i64>,
    last_used: Option<i64>,
}

pub async fn tokens<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    render_tokens(ctx, None, None, "", StatusCode::OK).await
}

async fn render_tokens<E: Env>(ctx: &Ctx<'_, E>, created: Option<&str>, error: Option<&str>, typed: &str, status: StatusCode) -> Result<Response, Error> {
    ctx.require_owner()?;
    let rows = ctx
        .db
        .query(
            "SELECT t.id, coalesce(t.label, ''), t.created_at, t.revoked_at, u.last_used_at FROM api_tokens t LEFT JOIN api_token_use u ON u.token_id = t.id \
             WHERE t.artist_id = ?1 ORDER BY t.created_at DESC, t.id",
            &[],
        )
        .await?;
    let list: Vec<Token> = rows
        .into_iter()
        .map(|mut r| Token {
            id: r.take_text(0).unwrap_or_default(),
            label: r.take_text(1).unwrap_or_default(),
            created_at: r.int(2).unwrap_or(0),
            revoked_at: r.int(3),
            last_used: r.int(4),
        })
        .collect();
    let body = html! {
        h1 { "API tokens" }
        p { "Tokens let your own tools use the links API (" code { "Authorization: Bearer …" } "). Each is shown once, when it is made." }
        @if let Some(t) = created {
            div.card role="status" {
                p.ok { "New token. Copy it now: it won't be shown again." }
                p.secret { (t) }
            }
        }
        @if crate::account::notice(ctx.parts).is_some() { p.ok role="status" { "Token revoked." } }
        @if list.is_empty() { p { "No tokens yet." } } @else {
            div.table { table {
                thead { tr { th scope="col" { "Label" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "State" } } }
                tbody { @for t in &list { tr {
                    td { (t.label) }
                    td { (view::datetime(Some(t.created_at))) }
                    td { (view::datetime(t.last_used)) }
                    td { @if let Some(r) = t.revoked_at { "revoked " (view::datetime(Some(r))) } @else {
                        form method="post" action={ "/app/tokens/" (t.id) "/revoke" } {
                            (view::csrf_field(&ctx.session.csrf))
                            button.secondary type="submit" aria-label={ "Revoke " (t.label) } { "Revoke" }
                        }
                    } }
                } } }
            } }
        }
        h2 { "New token" }
        form method="post" action="/app/tokens" novalidate {
            (view::csrf_field(&ctx.session.csrf))
            label for="label" { "Label" }
            input #label name="label" value=(typed) maxlength="60" required placeholder="Release script" aria-describedby=[error.map(|_| "label-error")];
            @if let Some(e) = error { p #label-error .err role="alert" { (e) } }
            button type="submit" { "Create token" }
        }
    };
    Ok(view::html_response(status, view::app_page(&ctx.session, Nav::Tokens, "API tokens", body)))
}

pub async fn create_token<E: Env>(ctx: &Ctx<'_, E>) -> Result<Response, Error> {
    ctx.require_owner()?;
    let label = ctx.form.get("label").unwrap_or("").trim();
    if label.is_empty() || label.chars().count() > 60 {
        return render_tokens(
            ctx,
            None,
            Some("Give the token a label of 1 to 60 characters, so you know later what uses it."),
            label,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let token = format!("sd_{}", auth::random_token(ctx.env)?);
    let id = shared::env::random_id(ctx.env)?;
    ctx.db
        .execute(
            "INSERT INTO api_tokens (id, artist_id, token_hash, label, created_at) VALUES (?2, ?1, ?3, ?4, ?5)",
            &[Param::Text(&id), Param::Text(&crypto::sha256_hex(token.as_bytes())), Param::Text(label), Param::Int(ctx.env.now_ms())],
        )
        .await?;
    render_tokens(ctx, Some(&token), None, "", StatusCode::CREATED).await
}

pub async fn revoke_token<E: Env>(ctx: &Ctx<'_, E>, id: &str) -> Result<Response, Error> {
    ctx.require_owner()?;
    let found = ctx.db.query("SELECT id FROM api_tokens WHERE artist_id = ?1 AND id = ?2", &[Param::Text(id)]).await?;
    if found.is_empty() {
        return Err(not_found());
    }
    ctx.db
        .execute(
            "UPDATE api_tokens SET revoked_at = ?3 WHERE artist_id = ?1 AND id = ?2 AND revoked_at IS NULL",
            &[Param::Text(id), Param::Int(ctx.env.now_ms())],
        )
        .await?;
    Ok(view::redirect("/app/tokens?done=revoked"))
}
