//! Small charts drawn on the server as inline SVG, for pages whose CSP
//! allows no script and no inline style: colours come from classes in the
//! dashboard stylesheet (so dark mode follows), sizes from the `viewBox`.
//!
//! Text stays out of the drawings. An SVG stretched to a phone's width
//! would shrink any text inside it to a few pixels, so scales, dates and
//! legends are HTML around the drawing, and each drawing is stretched
//! (`preserveAspectRatio="none"`) into a box the stylesheet sizes.
//! Every chart carries `<title>`/`<desc>` and a table with the same
//! numbers, which is what screen readers and careful readers use.

use maud::{html, Markup};

/// Thousands with separators below 10,000 (`1,234`), shorter above
/// (`12.5k`, `1.2M`): exact where a digit matters, short where a glance does.
pub fn human(n: u64) -> String {
    if n < 10_000 {
        grouped(n)
    } else {
        compact(n)
    }
}

/// `1234567` → `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `12499` → `12.5k`, `999999` → `1M`: one decimal below 100 of a unit,
/// none above, rounding half up, and never `1000k`.
pub fn compact(n: u64) -> String {
    if n < 1000 {
        return n.to_string();
    }
    let n = u128::from(n);
    let mut units = [("k", 1_000u128), ("M", 1_000_000), ("B", 1_000_000_000)].into_iter().peekable();
    while let Some((unit, div)) = units.next() {
        let tenths = (n * 10 + div / 2) / div;
        if tenths < 1000 {
            return match tenths % 10 {
                0 => format!("{}{unit}", tenths / 10),
                d => format!("{}.{d}{unit}", tenths / 10),
            };
        }
        let whole = (n + div / 2) / div;
        if whole < 1000 || units.peek().is_none() {
            return format!("{whole}{unit}");
        }
    }
    n.to_string()
}

/// One series of a day chart: its name in the legend and table, the class
/// that colours it, one value per day.
pub struct Series<'a> {
    pub name: &'a str,
    pub class: &'static str,
    pub values: Vec<u64>,
}

/// Columns per day (`days` are `YYYY-MM-DD`, one per value of each
/// series), series side by side within a day. Days where every series is
/// 0 draw nothing and are left out of the table.
pub fn days(title: &str, desc: &str, days: &[String], series: &[Series<'_>]) -> Markup {
    // Integer user units: a day is 12 wide, the height 1000, so no
    // coordinate needs a decimal point.
    let max = series.iter().flat_map(|s| s.values.iter()).copied().max().unwrap_or(0);
    let per = if series.len() > 1 { 5 } else { 10 };
    let width = days.len().max(1) * 12;
    let totals: Vec<u64> = series.iter().map(|s| s.values.iter().sum()).collect();
    let busy: Vec<usize> = (0..days.len()).filter(|&i| series.iter().any(|s| s.values.get(i).is_some_and(|&v| v > 0))).collect();
    html! {
        figure.chart {
            figcaption { (title) }
            div.plot {
                span.scale { (human(max)) }
                svg viewBox={ "0 0 " (width) " 1000" } preserveAspectRatio="none" role="img" focusable="false" {
                    title { (title) }
                    desc { (desc) }
                    line.axis x1="0" y1="1000" x2=(width) y2="1000" vector-effect="non-scaling-stroke" {}
                    @for (k, s) in series.iter().enumerate() {
                        g class=(s.class) {
                            @for (i, &v) in s.values.iter().enumerate() {
                                @if v > 0 && max > 0 {
                                    @let h = (v * 980 / max).max(8);
                                    rect x=(i * 12 + 1 + k * per) y=(1000 - h) width=(per) height=(h) {}
                                }
                            }
                        }
                    }
                }
                div.ticks { span { (days.first().map_or("", String::as_str)) } span { (days.last().map_or("", String::as_str)) } }
            }
            (legend(series.iter().zip(&totals).map(|(s, t)| (s.name, s.class, *t))))
            details {
                summary { "Table of " (title.to_lowercase()) }
                @if busy.is_empty() { p.muted { "Nothing on any day in this period." } } @else {
                    div.table { table {
                        thead { tr { th scope="col" { "Day (UTC)" } @for s in series { th scope="col" { (s.name) } } } }
                        tbody { @for &i in &busy { tr {
                            th scope="row" { (days[i]) }
                            @for s in series { td { (grouped(s.values.get(i).copied().unwrap_or(0))) } }
                        } } }
                    } }
                    p.muted { "Days with nothing are left out." }
                }
            }
        }
    }
}

/// Colour keys with totals, in HTML so they stay readable at any width.
fn legend<'a>(items: impl Iterator<Item = (&'a str, &'static str, u64)>) -> Markup {
    html! {
        ul.legend { @for (name, class, n) in items { li { span class={ "key " (class) } aria-hidden="true" {} (name) ": " strong { (grouped(n)) } } } }
    }
}

/// A ranked list with a bar per row: a table (which is its own text
/// alternative) whose bars are decoration for sighted readers.
pub fn bars(caption: &str, head: &str, unit: &str, rows: &[(String, u64)], class: &'static str) -> Markup {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    html! {
        div.table { table.bars {
            caption { (caption) }
            thead { tr { th scope="col" { (head) } th scope="col" { span.sr { "Share" } } th.num scope="col" { (unit) } } }
            tbody { @for (label, n) in rows { tr {
                th scope="row" { (label) }
                td.bar { svg viewBox="0 0 1000 10" preserveAspectRatio="none" aria-hidden="true" focusable="false" {
                    rect class=(class) width=((n * 1000 / max).max(4)) height="10" {}
                } }
                td.num { (grouped(*n)) }
            } } }
        } }
    }
}

/// Parts of one whole as one stacked bar (fans by status), with a legend
/// giving each part's count and share.
pub fn stack(title: &str, parts: &[(&str, &'static str, u64)]) -> Markup {
    let total: u64 = parts.iter().map(|p| p.2).sum();
    let desc = parts.iter().map(|(name, _, n)| format!("{name}: {}", grouped(*n))).collect::<Vec<_>>().join(", ");
    let mut x = 0;
    let segments: Vec<(&str, u64, u64)> = parts
        .iter()
        .filter(|p| p.2 > 0)
        .map(|&(_, class, n)| {
            let w = n * 1000 / total;
            x += w;
            (class, x - w, w.max(2))
        })
        .collect();
    html! {
        figure.chart {
            figcaption { (title) ": " strong { (grouped(total)) } }
            svg.stack viewBox="0 0 1000 10" preserveAspectRatio="none" role="img" focusable="false" {
                title { (title) }
                desc { (desc) }
                @if total == 0 { rect.empty width="1000" height="10" {} }
                @for (class, x, w) in segments { rect class=(class) x=(x) width=(w) height="10" {} }
            }
            ul.legend { @for (name, class, n) in parts { li {
                span class={ "key " (class) } aria-hidden="true" {} (name) ": " strong { (grouped(*n)) }
                @if total > 0 { " " span.muted { "(" (percent(*n, total)) ")" } }
            } } }
        }
    }
}

/// `part` of `whole` as a percentage with one decimal (`12.5%`).
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "—".to_owned();
    }
    let tenths = (u128::from(part) * 1000 + u128::from(whole) / 2) / u128::from(whole);
    format!("{}.{}%", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        let check = |n: u64, want: &str| assert_eq!(human(n), want, "{n}");
        check(0, "0");
        check(7, "7");
        check(999, "999");
        check(1_000, "1,000");
        check(9_999, "9,999");
        check(10_000, "10k");
        check(12_499, "12.5k");
        check(12_449, "12.4k");
        check(99_950, "100k");
        check(123_456, "123k");
        check(999_499, "999k");
        check(999_500, "1M");
        check(1_234_567, "1.2M");
        check(1_000_000_000, "1B");
        check(u64::MAX, "18446744074B");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(100), "100");
        assert_eq!(compact(1_000), "1k");
        assert_eq!(compact(1_050), "1.1k");
    }

    #[test]
    fn percentages_round_and_never_divide_by_zero() {
        assert_eq!(percent(1, 8), "12.5%");
        assert_eq!(percent(2, 3), "66.7%");
        assert_eq!(percent(0, 0), "—");
        assert_eq!(percent(5, 5), "100.0%");
    }

    fn all_charts() -> Vec<String> {
        let day_names: Vec<String> = (1..=30).map(|d| format!("2026-01-{d:02}")).collect();
        let a = Series { name: "Signups", class: "c1", values: (0..30).map(|i| i % 7).collect() };
        let b = Series { name: "Unsubscribes", class: "c2", values: vec![0; 30] };
        vec![
            days("Signups per day", "Signups and unsubscribes per day", &day_names, &[a, b]).into_string(),
            days("Clicks per day", "Nothing yet", &day_names[..0], &[Series { name: "Clicks", class: "c1", values: vec![] }]).into_string(),
            stack("Fans by status", &[("subscribed", "st-subscribed", 3), ("pending", "st-pending", 0)]).into_string(),
            stack("Fans by status", &[("subscribed", "st-subscribed", 0)]).into_string(),
            bars("Top countries", "Country", "Fans", &[("SE".into(), 12), ("US".into(), 3)], "c1").into_string(),
        ]
    }

    #[test]
    fn charts_name_themselves_and_use_no_inline_style() {
        for svg in all_charts() {
            assert!(!svg.contains("style="), "CSP forbids inline style: {svg}");
            assert!(!svg.contains("<script"), "{svg}");
            if svg.contains("role=\"img\"") {
                assert!(svg.contains("<title>") && svg.contains("<desc>"), "{svg}");
            }
        }
    }

    #[test]
    fn day_chart_has_a_bar_and_a_table_row_per_busy_day() {
        let names: Vec<String> = ["2026-01-01", "2026-01-02", "2026-01-03"].map(String::from).to_vec();
        let html = days("Clicks per day", "d", &names, &[Series { name: "Clicks", class: "c1", values: vec![4, 0, 1_234] }]).into_string();
        assert_eq!(html.matches("<rect").count(), 2, "{html}");
        assert!(html.contains("<th scope=\"row\">2026-01-01</th><td>4</td>"), "{html}");
        assert!(!html.contains("2026-01-02</th>"), "empty day left out of the table");
        assert!(html.contains("1,234"), "{html}");
        assert!(html.contains("viewBox=\"0 0 36 1000\""), "{html}");
    }
}
