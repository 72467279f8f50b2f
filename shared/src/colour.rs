//! Artists' colours on fan pages: `#rrggbb` parsing and the WCAG 2 contrast
//! rules that keep text readable whatever colour an artist picks. Text
//! colours are never chosen by the artist but derived (white or
//! near-black), so a theme that passes [`Theme::new`] is readable by
//! construction. Same rules and wording as the smart-link page's theme
//! (`functions/links/src/link.rs`, which may switch to this module).

use crate::{Error, ErrorKind};

/// A colour as `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub [u8; 3]);

impl Rgb {
    pub const WHITE: Rgb = Rgb([0xff; 3]);
    /// Near-black rather than black: softer on a light page, and it still
    /// reads on every background white text can't serve but one narrow band.
    pub const INK: Rgb = Rgb([0x11; 3]);

    /// `#rrggbb`, either case; nothing else, so the stored form is one
    /// spelling and nothing but hex digits ever reaches a stylesheet.
    pub fn parse(s: &str) -> Option<Rgb> {
        let hex = s.strip_prefix('#').filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))?;
        let mut out = [0u8; 3];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Rgb(out))
    }

    /// Lower-case `#rrggbb`.
    pub fn write(self, out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push('#');
        for b in self.0 {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }

    pub fn hex(self) -> String {
        let mut s = String::with_capacity(7);
        self.write(&mut s);
        s
    }

    /// WCAG 2 relative luminance plus its 0.05 flare term, in units of
    /// 1/(65535 × 10000). Integer arithmetic from a table: `powf` would
    /// bring libm's `pow` into the wasm.
    fn luminance(self) -> u64 {
        let [r, g, b] = self.0.map(|c| u64::from(SRGB_TO_LINEAR[usize::from(c)]));
        2126 * r + 7152 * g + 722 * b + 65535 * 500
    }

    /// The contrast ratio between two colours in tenths, rounded down
    /// (45 is WCAG AA's 4.5:1 for text).
    pub fn contrast_tenths(self, other: Rgb) -> u64 {
        let (a, b) = (self.luminance(), other.luminance());
        10 * a.max(b) / a.min(b)
    }

    /// White or near-black, whichever reads better on `self`.
    pub fn text_on(self) -> Rgb {
        if self.contrast_tenths(Rgb::WHITE) >= self.contrast_tenths(Rgb::INK) {
            Rgb::WHITE
        } else {
            Rgb::INK
        }
    }
}

/// WCAG AA: 4.5:1 for text, 3:1 for a control against what surrounds it.
pub const MIN_TEXT_CONTRAST: u64 = 45;
pub const MIN_BUTTON_CONTRAST: u64 = 30;

/// The artist's colours with the text colours derived for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub background: Rgb,
    pub button: Rgb,
    pub text: Rgb,
    pub button_text: Rgb,
}

/// The names errors give the two colours (form fields or JSON paths).
pub type Fields = (&'static str, &'static str);

impl Theme {
    /// Refuses a colour no text can be read on, and a button too close to
    /// the background to be seen, naming the field to change.
    pub fn new(background: Rgb, button: Rgb, (bg_field, button_field): Fields) -> Result<Theme, Error> {
        let text = background.text_on();
        let button_text = button.text_on();
        for (field, colour, on) in [(bg_field, background, text), (button_field, button, button_text)] {
            if colour.contrast_tenths(on) < MIN_TEXT_CONTRAST {
                return Err(Error::field(
                    ErrorKind::Unprocessable,
                    field,
                    format!(
                        "{field} {} can't carry readable text: neither white nor near-black text reaches 4.5:1 on it (WCAG AA). Choose a lighter or a darker colour.",
                        colour.hex()
                    ),
                ));
            }
        }
        let apart = button.contrast_tenths(background);
        if apart < MIN_BUTTON_CONTRAST {
            return Err(Error::field(
                ErrorKind::Unprocessable,
                button_field,
                format!(
                    "{button_field} {} is too close to {bg_field} {} ({}.{}:1): buttons need 3:1 against the page to be seen (WCAG AA). Choose a colour further from the background.",
                    button.hex(),
                    background.hex(),
                    apart / 10,
                    apart % 10
                ),
            ));
        }
        Ok(Theme { background, button, text, button_text })
    }
}

/// `s` as a colour, or the error the links page gives for a malformed one.
pub fn parse_field(s: &str, field: &'static str) -> Result<Rgb, Error> {
    Rgb::parse(s.trim())
        .ok_or_else(|| Error::field(ErrorKind::Unprocessable, field, format!("{field} must be a colour written #rrggbb (six hex digits), such as #1e1b4b.")))
}

/// sRGB channel value → linear light × 65535 (WCAG 2's formula); a test
/// checks every entry against it.
#[rustfmt::skip]
const SRGB_TO_LINEAR: [u16; 256] = [
    0, 20, 40, 60, 80, 99, 119, 139, 159, 179, 199, 219, 241, 264, 288, 313, 340, 367, 396, 427, 458, 491, 526, 562, 599, 637, 677, 718, 761, 805, 851, 898,
    947, 997, 1048, 1101, 1156, 1212, 1270, 1330, 1391, 1453, 1517, 1583, 1651, 1720, 1790, 1863, 1937, 2013, 2090, 2170, 2250, 2333, 2418, 2504, 2592, 2681,
    2773, 2866, 2961, 3058, 3157, 3258, 3360, 3464, 3570, 3678, 3788, 3900, 4014, 4129, 4247, 4366, 4488, 4611, 4736, 4864, 4993, 5124, 5257, 5392, 5530, 5669,
    5810, 5953, 6099, 6246, 6395, 6547, 6700, 6856, 7014, 7174, 7335, 7500, 7666, 7834, 8004, 8177, 8352, 8528, 8708, 8889, 9072, 9258, 9445, 9635, 9828,
    10022, 10219, 10417, 10619, 10822, 11028, 11235, 11446, 11658, 11873, 12090, 12309, 12530, 12754, 12980, 13209, 13440, 13673, 13909, 14146, 14387, 14629,
    14874, 15122, 15371, 15623, 15878, 16135, 16394, 16656, 16920, 17187, 17456, 17727, 18001, 18277, 18556, 18837, 19121, 19407, 19696, 19987, 20281, 20577,
    20876, 21177, 21481, 21787, 22096, 22407, 22721, 23038, 23357, 23678, 24002, 24329, 24658, 24990, 25325, 25662, 26001, 26344, 26688, 27036, 27386, 27739,
    28094, 28452, 28813, 29176, 29542, 29911, 30282, 30656, 31033, 31412, 31794, 32179, 32567, 32957, 33350, 33745, 34143, 34544, 34948, 35355, 35764, 36176,
    36591, 37008, 37429, 37852, 38278, 38706, 39138, 39572, 40009, 40449, 40891, 41337, 41785, 42236, 42690, 43147, 43606, 44069, 44534, 45002, 45473, 45947,
    46423, 46903, 47385, 47871, 48359, 48850, 49344, 49841, 50341, 50844, 51349, 51858, 52369, 52884, 53401, 53921, 54445, 54971, 55500, 56032, 56567, 57105,
    57646, 58190, 58737, 59287, 59840, 60396, 60955, 61517, 62082, 62650, 63221, 63795, 64372, 64952, 65535,
];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const FIELDS: Fields = ("background", "button");

    #[test]
    fn the_table_is_wcag_formula() {
        for (i, &v) in SRGB_TO_LINEAR.iter().enumerate() {
            let c = i as f64 / 255.0;
            let lin = if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) };
            assert!(((lin * 65535.0).round() - f64::from(v)).abs() <= 1.0, "entry {i}");
        }
    }

    #[test]
    fn parses_only_six_hex_digits() {
        assert_eq!(Rgb::parse("#1E1b4b"), Some(Rgb([0x1e, 0x1b, 0x4b])));
        assert_eq!(Rgb::parse("#1e1b4b").unwrap().hex(), "#1e1b4b");
        for bad in ["1e1b4b", "#1e1b4", "#1e1b4bb", "#gg0000", "#+1+1+1", "red", "", "#１２３４５６"] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn contrast_and_text_colour() {
        assert_eq!(Rgb::WHITE.contrast_tenths(Rgb([0; 3])), 210, "21:1");
        assert_eq!(Rgb([0x1e, 0x1b, 0x4b]).text_on(), Rgb::WHITE);
        assert_eq!(Rgb([0xfa, 0xcc, 0x15]).text_on(), Rgb::INK);
    }

    #[test]
    fn refuses_unreadable_or_invisible_themes_naming_the_field() {
        let ok = Theme::new(Rgb([0x1e, 0x1b, 0x4b]), Rgb([0xfa, 0xcc, 0x15]), FIELDS).unwrap();
        assert_eq!((ok.text, ok.button_text), (Rgb::WHITE, Rgb::INK));
        // Mid grey: neither white nor near-black text reaches 4.5:1 on it.
        let e = Theme::new(Rgb([0x77; 3]), Rgb::INK, FIELDS).unwrap_err();
        assert_eq!(e.field, Some("background"), "{e}");
        assert!(e.public_message().contains("#777777") && e.public_message().contains("4.5:1"), "{e}");
        let e = Theme::new(Rgb::WHITE, Rgb([0x77; 3]), FIELDS).unwrap_err();
        assert_eq!(e.field, Some("button"), "{e}");
        let e = Theme::new(Rgb::WHITE, Rgb([0xf0; 3]), FIELDS).unwrap_err();
        assert_eq!(e.field, Some("button"));
        assert!(e.public_message().contains("too close"), "{e}");
        assert_eq!(parse_field(" #ABCDEF ", "button").unwrap(), Rgb([0xab, 0xcd, 0xef]));
        assert!(parse_field("blue", "button").unwrap_err().public_message().contains("#rrggbb"));
    }
}
