//! The QR code on the two-factor enrolment page, rendered server-side as
//! inline SVG so the page needs no script, no image route and no extra
//! request carrying the secret.
//!
//! Drawn here rather than with the `qrcode` crate's SVG renderer because
//! that one starts with an XML declaration (invalid inside HTML) and has no
//! way to add the accessible name; only the module matrix is taken from it.

use std::fmt::Write;

use qrcode::{Color, EcLevel, QrCode};

/// Longest `data` accepted. An otpauth URI is ~150 bytes; anything near this
/// is a bug upstream, and a code that dense would not scan at 220 px anyway.
const MAX_DATA_LEN: usize = 2_000;

/// Light modules around the code: the 4 the QR specification requires,
/// without which scanners struggle to find the finder patterns.
const QUIET: usize = 4;

/// Rendered size in CSS px: large enough for phone cameras at arm's length.
const SIZE_PX: u32 = 220;

/// An inline SVG QR code for `data` (an otpauth URI), for pages whose CSP forbids inline styles: no `style` attributes or elements, only presentation attributes (fill, viewBox, shape-rendering="crispEdges"); `role="img"`, an `aria-label` and a `<title>` saying what it is; width/height of 220 css px with a quiet zone; black modules on white so it scans in dark mode too.
///
/// Level M (~15 % recovery) because the code is read off a screen, where
/// damage is rare and a smaller version gives larger modules. The dark
/// modules are one `<path>` of row runs, a fraction of the size of one
/// `<rect>` per module.
pub fn svg(data: &str, label: &str) -> Result<String, shared::Error> {
    if data.len() > MAX_DATA_LEN {
        return Err(shared::Error::internal(format_args!("QR data is {} bytes, over {MAX_DATA_LEN}", data.len())));
    }
    let code =
        QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(|e| shared::Error::internal(format_args!("QR encoding failed: {e}")))?;
    let width = code.width();
    let colors = code.to_colors();
    let side = width + 2 * QUIET;
    let label = shared::html::escape(label);

    let mut out = String::with_capacity(400 + width * width);
    // Writing to a String cannot fail, hence the ignored results below.
    let _ = write!(
        out,
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{px}" height="{px}" viewBox="0 0 {side} {side}""#,
            r#" shape-rendering="crispEdges" role="img" aria-label="{label}"><title>{label}</title>"#,
            r##"<rect width="{side}" height="{side}" fill="#fff"/><path fill="none" stroke="#000" d="M0 .5"##,
        ),
        px = SIZE_PX,
        side = side,
        label = label,
    );
    // One 1-unit-wide stroke per horizontal run of dark modules, along the
    // middle of its row (hence the half-unit start), each reached by a
    // relative move from where the previous one ended: about half the bytes
    // of closed rectangles, and butt caps make it cover the same modules.
    let (mut pen_x, mut pen_y) = (0usize, 0usize);
    for (y, row) in colors.chunks(width.max(1)).enumerate() {
        let mut x = 0;
        while x < row.len() {
            if row[x] != Color::Dark {
                x += 1;
                continue;
            }
            let start = x;
            while x < row.len() && row[x] == Color::Dark {
                x += 1;
            }
            let run = x - start;
            let (sx, sy) = (start + QUIET, y + QUIET);
            let _ = write!(out, "m{} {}h{run}", offset(pen_x, sx), offset(pen_y, sy));
            (pen_x, pen_y) = (sx + run, sy);
        }
    }
    out.push_str(r#""/></svg>"#);
    Ok(out)
}

/// `to - from` as a signed number; coordinates are at most a few hundred.
fn offset(from: usize, to: usize) -> i64 {
    to as i64 - from as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/Stagedoor:owner%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Stagedoor&algorithm=SHA1&digits=6&period=30";

    /// The dark modules the path paints, rebuilt by following its commands.
    fn painted(d: &str, side: usize) -> Vec<bool> {
        let mut grid = vec![false; side * side];
        let rest = d.strip_prefix("M0 .5").expect("starts at the middle of row 0");
        let (mut px, mut py) = (0i64, 0i64);
        for cmd in rest.split('m').filter(|c| !c.is_empty()) {
            let (dx, rest) = cmd.split_once(' ').expect("m dx dy");
            let (dy, run) = rest.split_once('h').expect("h run");
            let run: usize = run.parse().expect("run");
            assert!(run > 0, "{cmd}");
            px += dx.parse::<i64>().expect("dx");
            py += dy.parse::<i64>().expect("dy");
            for x in 0..run {
                let i = py as usize * side + px as usize + x;
                assert!(!grid[i], "module painted twice");
                grid[i] = true;
            }
            px += run as i64;
        }
        grid
    }

    #[test]
    fn typical_otpauth_uri() {
        let label = "QR code: add <Stagedoor> & \"you\" to your authenticator app";
        let svg = svg(URI, label).expect("fits");
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("style"));
        assert!(!svg.contains("<?xml"));
        let escaped = "QR code: add &lt;Stagedoor&gt; &amp; &quot;you&quot; to your authenticator app";
        assert!(svg.contains(&format!("<title>{escaped}</title>")));
        assert!(svg.contains(&format!("aria-label=\"{escaped}\"")));
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains(r#"width="220" height="220""#));
        assert!(svg.contains(r#"shape-rendering="crispEdges""#));
        assert_eq!(svg.matches("<path").count(), 1);

        // The module count is the version's (17 + 4v), plus the quiet zone.
        let code = QrCode::with_error_correction_level(URI.as_bytes(), EcLevel::M).expect("fits");
        let v = match code.version() {
            qrcode::Version::Normal(v) => v,
            qrcode::Version::Micro(_) => 0,
        };
        // 135 bytes: over version 7-M's 122-byte capacity, within 8-M's 152.
        assert_eq!(v, 8, "a {}-byte URI at level M", URI.len());
        let width = (17 + 4 * v) as usize;
        assert_eq!(code.width(), width);
        let side = width + 2 * QUIET;
        assert!(svg.contains(&format!(r#"viewBox="0 0 {side} {side}""#)));

        // And the path paints exactly the dark modules, inside the quiet zone.
        let d = svg.split(" d=\"").nth(1).and_then(|s| s.split('"').next()).expect("path data");
        let grid = painted(d, side);
        let colors = code.to_colors();
        for y in 0..side {
            for x in 0..side {
                let inside = (QUIET..QUIET + width).contains(&x) && (QUIET..QUIET + width).contains(&y);
                let dark = inside && colors[(y - QUIET) * width + (x - QUIET)] == Color::Dark;
                assert_eq!(grid[y * side + x], dark, "module ({x}, {y})");
            }
        }
        println!("typical URI ({} bytes): SVG {} bytes, version {v}", URI.len(), svg.len());
    }

    #[test]
    fn too_long_is_an_error_not_a_panic() {
        assert!(svg(&"a".repeat(MAX_DATA_LEN + 1), "x").is_err());
        assert!(svg(&"é".repeat(1_500), "x").is_err());
        assert!(svg(&"a".repeat(MAX_DATA_LEN), "x").is_ok());
        assert!(svg("", "x").is_ok());
    }
}
