//! Bar charts of counts per day, drawn as SVG on the server: the one place the
//! pages' charts are drawn.
//!
//! A chart is one bar per day of a [`Window`] (days without a count are zero
//! bars), each bar stacked from the parts of its [`Stacks`]' series. A series is
//! told apart by its fill pattern (solid, hatched, dotted, …) and outline as well
//! as its colour, and named in a text legend, so the chart reads without colour.
//! Each bar is a `<g class="day">` with a `<title>` saying its date and counts
//! (and `data-date`, `data-total`); the chart has `role="img"` and an
//! `aria-label` summing it up. Drawn with presentation attributes and the style
//! sheet's classes only: the pages' policy allows no `style` attribute.

use maud::{Markup, html};

use crate::index::{DailyCount, date_of};
use crate::triage::trends::Window;

/// Colours of the series, in order (the patterns tell them apart without).
const COLOURS: [&str; 6] = [
    "#2c5cc5", "#b54708", "#067647", "#6941c6", "#b42318", "#475467",
];

/// The most series a chart has: the rest go into the last one.
pub const MAX_SERIES: usize = COLOURS.len();

/// One series: how its parts are named in the legend and in a bar's title.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its legend entry, e.g. `Reports with a dump`.
    pub legend: String,
    /// Its part of a bar's title after the count, e.g. `with a dump`.
    pub part: String,
}

/// Counts per day of a window and per series.
#[derive(Debug, Clone)]
pub struct Stacks {
    window: Window,
    series: Vec<Series>,
    /// `counts[day][series]`.
    counts: Vec<Vec<i64>>,
}

impl Stacks {
    /// No counts yet, for `window` and `series` (at most [`MAX_SERIES`]).
    pub fn new(window: Window, mut series: Vec<Series>) -> Stacks {
        series.truncate(MAX_SERIES);
        let counts = vec![vec![0; series.len()]; window.days as usize];
        Stacks {
            window,
            series,
            counts,
        }
    }

    /// Two series: reports received with a dump (solid) and crashes counted
    /// from a summary without one (hatched).
    pub fn reports_and_counted(window: Window) -> Stacks {
        Stacks::new(
            window,
            vec![
                Series {
                    legend: "Reports with a dump".to_owned(),
                    part: "with a dump".to_owned(),
                },
                Series {
                    legend: "Counted without a dump".to_owned(),
                    part: "counted without a dump".to_owned(),
                },
            ],
        )
    }

    /// An issue's counts stacked by version (reports and counted together): its
    /// busiest versions in the window each a series, the others one more.
    pub fn by_version(window: Window, rows: &[DailyCount]) -> Stacks {
        let ranked = versions_by_total(window, rows);
        let named = if ranked.len() > MAX_SERIES {
            MAX_SERIES - 1
        } else {
            ranked.len()
        };
        let mut series: Vec<Series> = ranked[..named]
            .iter()
            .map(|(version, _, _)| match version.as_str() {
                "" => Series {
                    legend: "Unknown version".to_owned(),
                    part: "in an unknown version".to_owned(),
                },
                v => Series {
                    legend: format!("Version {v}"),
                    part: format!("in {v}"),
                },
            })
            .collect();
        if ranked.len() > named {
            series.push(Series {
                legend: "Other versions".to_owned(),
                part: "in other versions".to_owned(),
            });
        }
        let mut stacks = Stacks::new(window, series);
        for row in rows {
            let at = ranked[..named]
                .iter()
                .position(|(v, _, _)| *v == row.version)
                .unwrap_or(named);
            stacks.add(row.day, at, row.reports + row.counted);
        }
        stacks
    }

    /// Adds `n` to `series` on `day` (nothing when the day is outside the window).
    pub fn add(&mut self, day: i64, series: usize, n: i64) {
        let Some(at) = self.window.position(day) else {
            return;
        };
        if let Some(count) = self.counts[at].get_mut(series) {
            *count += n.max(0);
        }
    }

    /// Everything counted in the window.
    pub fn total(&self) -> i64 {
        self.counts.iter().flatten().sum()
    }

    fn day_total(&self, at: usize) -> i64 {
        self.counts[at].iter().sum()
    }

    /// "3 with a dump, 1 counted without a dump": the non-zero parts of `counts`.
    fn parts(&self, counts: &[i64]) -> String {
        let parts: Vec<String> = self
            .series
            .iter()
            .zip(counts)
            .filter(|(_, n)| **n > 0)
            .map(|(series, n)| format!("{n} {}", series.part))
            .collect();
        parts.join(", ")
    }

    /// The title of day `at`'s bar: its date and counts.
    fn bar_title(&self, at: usize) -> String {
        let date = date_of(self.window.first_day + at as i64);
        match self.day_total(at) {
            0 => format!("{date}: no crashes"),
            1 => format!("{date}: 1 crash — {}", self.parts(&self.counts[at])),
            n => format!("{date}: {n} crashes — {}", self.parts(&self.counts[at])),
        }
    }

    /// The chart summed up in words, for its `aria-label`.
    fn summary(&self, what: &str) -> String {
        let days = self.window.days;
        let total = self.total();
        if total == 0 {
            return format!("{what}, last {days} days: no crashes");
        }
        let sums: Vec<i64> = (0..self.series.len())
            .map(|s| self.counts.iter().map(|day| day[s]).sum())
            .collect();
        let (busiest, most) = (0..self.counts.len())
            .map(|at| (at, self.day_total(at)))
            .fold((0, 0), |best, day| if day.1 > best.1 { day } else { best });
        format!(
            "{what}, last {days} days: {total} in all — {}; most on {} ({most})",
            self.parts(&sums),
            date_of(self.window.first_day + busiest as i64)
        )
    }
}

/// Versions of `rows` in `window` with their reports and counted, busiest first.
pub fn versions_by_total(window: Window, rows: &[DailyCount]) -> Vec<(String, i64, i64)> {
    let mut versions: Vec<(String, i64, i64)> = Vec::new();
    for row in rows.iter().filter(|r| window.position(r.day).is_some()) {
        match versions.iter_mut().find(|(v, _, _)| *v == row.version) {
            Some((_, reports, counted)) => {
                *reports += row.reports;
                *counted += row.counted;
            }
            None => versions.push((row.version.clone(), row.reports, row.counted)),
        }
    }
    versions.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then_with(|| a.0.cmp(&b.0)));
    versions
}

/// How big a chart is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// A list row's: bars only, no axis text.
    Small,
    /// A page's: the highest count and the first and last dates written on it.
    Large,
}

/// Its geometry: the plot's width and height, and the margins for axis text.
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    top: f64,
    bottom: f64,
}

impl Size {
    fn frame(self, days: i64) -> Frame {
        match self {
            Size::Small => Frame {
                width: (days as f64 * 4.0).clamp(60.0, 240.0),
                height: 24.0,
                left: 0.0,
                top: 1.0,
                bottom: 1.0,
            },
            Size::Large => Frame {
                width: 720.0,
                height: 140.0,
                left: 36.0,
                top: 8.0,
                bottom: 20.0,
            },
        }
    }
}

/// The fill of series `at` of the chart whose ids start with `id`.
fn fill(id: &str, at: usize) -> String {
    format!("url(#{id}-p{at})")
}

/// The patterns of `count` series, their ids starting with `id`: solid,
/// hatched, dotted, cross-hatched, striped across, striped along.
fn patterns(id: &str, count: usize) -> Markup {
    html! {
        defs {
            @for (at, colour) in COLOURS.iter().enumerate().take(count) {
                pattern id=(format!("{id}-p{at}")) patternUnits="userSpaceOnUse" width="6" height="6"
                    patternTransform=[(at == 1).then_some("rotate(45)")] {
                    @match at {
                        0 => rect width="6" height="6" fill=(colour) {},
                        1 => { rect width="6" height="6" fill="#fff" {} rect width="3" height="6" fill=(colour) {} }
                        2 => { rect width="6" height="6" fill="#fff" {} circle cx="3" cy="3" r="1.6" fill=(colour) {} }
                        3 => { rect width="6" height="6" fill="#fff" {} path d="M0 0L6 6M6 0L0 6" stroke=(colour) stroke-width="1.2" {} }
                        4 => { rect width="6" height="6" fill="#fff" {} rect width="6" height="2.5" fill=(colour) {} }
                        _ => { rect width="6" height="6" fill="#fff" {} rect width="2.5" height="6" fill=(colour) {} }
                    }
                }
            }
        }
    }
}

/// `n` with at most one decimal, for coordinates.
fn num(n: f64) -> String {
    let rounded = (n * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}

/// The chart of `stacks`: `id` is unique on the page (its patterns' ids start
/// with it), `what` names it in its summary (e.g. `Crashes per day`).
pub fn chart(id: &str, stacks: &Stacks, size: Size, what: &str) -> Markup {
    let frame = size.frame(stacks.window.days);
    let (full_width, full_height) = (
        frame.left + frame.width + 2.0,
        frame.top + frame.height + frame.bottom,
    );
    let slot = frame.width / stacks.window.days as f64;
    let bar_width = if slot >= 3.0 { slot * 0.8 } else { slot };
    let max = (0..stacks.counts.len())
        .map(|at| stacks.day_total(at))
        .max()
        .unwrap_or(0);
    let base = frame.top + frame.height;
    let scale = if max > 0 {
        frame.height / max as f64
    } else {
        0.0
    };
    html! {
        svg.chart class=(match size { Size::Small => "chart small", Size::Large => "chart large" })
            id=(id) role="img" aria-label=(stacks.summary(what))
            width=(num(full_width)) height=(num(full_height))
            viewBox=(format!("0 0 {} {}", num(full_width), num(full_height)))
            xmlns="http://www.w3.org/2000/svg" {
            (patterns(id, stacks.series.len()))
            @if size == Size::Large {
                line x1=(num(frame.left)) x2=(num(frame.left + frame.width)) y1=(num(frame.top)) y2=(num(frame.top))
                    stroke="#e4e7ec" stroke-dasharray="3 3" {}
                text x=(num(frame.left - 4.0)) y=(num(frame.top + 4.0)) text-anchor="end" font-size="11" fill="#667085" { (max) }
                text x=(num(frame.left - 4.0)) y=(num(base)) text-anchor="end" font-size="11" fill="#667085" { "0" }
                text x=(num(frame.left)) y=(num(full_height - 4.0)) font-size="11" fill="#667085" { (date_of(stacks.window.first_day)) }
                text x=(num(frame.left + frame.width)) y=(num(full_height - 4.0)) text-anchor="end" font-size="11" fill="#667085" { (date_of(stacks.window.last_day())) }
            }
            @for (at, counts) in stacks.counts.iter().enumerate() {
                @let x = frame.left + at as f64 * slot + (slot - bar_width) / 2.0;
                g.day data-date=(date_of(stacks.window.first_day + at as i64)) data-total=(stacks.day_total(at)) {
                    title { (stacks.bar_title(at)) }
                    rect.hit x=(num(frame.left + at as f64 * slot)) y=(num(frame.top)) width=(num(slot)) height=(num(frame.height)) fill="transparent" {}
                    @let mut top = base;
                    @for (series, n) in counts.iter().enumerate() {
                        @if *n > 0 {
                            // Every non-zero part at least a pixel high, so no count is invisible.
                            @let height = (*n as f64 * scale).max(1.0);
                            @let y = { top -= height; top };
                            rect.part x=(num(x)) y=(num(y)) width=(num(bar_width)) height=(num(height))
                                fill=(fill(id, series)) stroke=(COLOURS[series]) stroke-width="0.6" {}
                        }
                    }
                }
            }
            line x1=(num(frame.left)) x2=(num(frame.left + frame.width)) y1=(num(base)) y2=(num(base)) stroke="#98a2b3" stroke-width="1" {}
        }
    }
}

/// The legend of `stacks`' series: a swatch of each pattern and its name. `id`
/// is unique on the page (the swatches' patterns' ids start with it).
pub fn legend(id: &str, stacks: &Stacks) -> Markup {
    html! {
        ul.legend id=(id) {
            @for (at, series) in stacks.series.iter().enumerate() {
                li {
                    svg width="14" height="14" viewBox="0 0 14 14" aria-hidden="true" xmlns="http://www.w3.org/2000/svg" {
                        @if at == 0 { (patterns(id, stacks.series.len())) }
                        rect x="1" y="1" width="12" height="12" fill=(fill(id, at)) stroke=(COLOURS[at]) {}
                    }
                    (series.legend)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        Window {
            first_day: 20_000,
            days: 7,
        }
    }

    fn count(day: i64, version: &str, reports: i64, counted: i64) -> DailyCount {
        DailyCount {
            day,
            product: "App".to_owned(),
            version: version.to_owned(),
            reports,
            counted,
        }
    }

    #[test]
    fn every_day_is_a_bar_titled_with_its_counts() {
        let mut stacks = Stacks::reports_and_counted(window());
        stacks.add(20_001, 0, 3);
        stacks.add(20_001, 1, 1);
        stacks.add(20_006, 1, 2);
        stacks.add(19_999, 0, 50); // before the window: not drawn
        assert_eq!(stacks.total(), 6);
        let svg = chart("c", &stacks, Size::Large, "Crashes per day").into_string();
        assert_eq!(svg.matches("<g class=\"day\"").count(), 7);
        assert_eq!(svg.matches("class=\"part\"").count(), 3);
        assert!(svg.contains(
            "<title>2024-10-05: 4 crashes — 3 with a dump, 1 counted without a dump</title>"
        ));
        assert!(svg.contains("<title>2024-10-10: 2 crashes — 2 counted without a dump</title>"));
        assert!(svg.contains("<title>2024-10-04: no crashes</title>"));
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains(
            "aria-label=\"Crashes per day, last 7 days: 6 in all — 3 with a dump, \
             3 counted without a dump; most on 2024-10-05 (4)\""
        ));
        assert!(
            !svg.contains("style="),
            "the policy allows no style attribute"
        );
        let legend = legend("l", &stacks).into_string();
        assert!(
            legend.contains("Reports with a dump") && legend.contains("Counted without a dump")
        );
    }

    #[test]
    fn versions_beyond_the_busiest_are_other() {
        let rows: Vec<DailyCount> = (0..8)
            .map(|v| count(20_002, &format!("1.{v}"), v + 1, 0))
            .chain([count(20_003, "", 0, 2)])
            .collect();
        let stacks = Stacks::by_version(window(), &rows);
        assert_eq!(stacks.series.len(), MAX_SERIES);
        assert_eq!(stacks.series[0].legend, "Version 1.7");
        assert_eq!(stacks.series[MAX_SERIES - 1].legend, "Other versions");
        assert_eq!(stacks.total(), (1..=8).sum::<i64>() + 2);
        let ranked = versions_by_total(window(), &rows);
        assert_eq!(ranked.len(), 9);
        assert_eq!(ranked[0], ("1.7".to_owned(), 8, 0));
    }

    #[test]
    fn an_empty_window_is_zero_bars() {
        let stacks = Stacks::reports_and_counted(window());
        let svg = chart("e", &stacks, Size::Small, "Crashes per day").into_string();
        assert_eq!(svg.matches("<g class=\"day\"").count(), 7);
        assert!(!svg.contains("class=\"part\""));
        assert!(svg.contains("last 7 days: no crashes"));
    }
}
