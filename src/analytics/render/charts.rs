//! The HTML report's charts, drawn by `plotters` into SVG strings that the
//! page embeds inline (no script, no file beside the page).

use std::collections::BTreeMap;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// The page's width less its margins: the plot and its legend side by side.
const WIDTH: u32 = 1040;
const HEIGHT: u32 = 320;
/// matplotlib's tab20, strong shades first, then their light partners: 20
/// distinct colours, so the built-in nightly pipeline's 7 stages (and up to
/// 20 series) never share one; with 6 colours the 7th stage took the 1st's.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

/// plotters writes a font's size at 0.8 of what it is given: these come
/// out at about 17 and 13.5 px, read at a glance on a laptop screen.
const CAPTION_FONT: (&str, u32) = ("sans-serif", 22);
const LABEL_FONT: (&str, u32) = ("sans-serif", 17);

type Draw<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn svg(draw: impl FnOnce(&Draw<'_>) -> Result<(), String>, height: u32) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(|e| e.to_string()));
        if let Err(e) = drawn {
            return format!(
                "<p class=\"error\">chart not drawn: {}</p>",
                crate::analytics::render::escape::html(&e)
            );
        }
    }
    out
}

/// Width of the legend beside a line chart: names are never drawn over the lines.
const LEGEND_W: u32 = 230;
/// Height of one legend row.
const LEGEND_ROW: u32 = 20;
const DAY: f64 = 86_400.0;

/// How the time axis maps: x counts `unit`s (days, or hours when the runs
/// span less than 3 days) from the first run's midnight (hour), so the
/// axis' round numbers are whole days (hours); each label is the date at its
/// tick.
struct TimeAxis {
    origin: f64,
    unit: f64,
    span: f64,
    ticks: usize,
}

impl TimeAxis {
    fn new(t_min: f64, t_max: f64) -> TimeAxis {
        let span = t_max - t_min;
        let unit = if span >= 3.0 * DAY { DAY } else { 3_600.0 };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ticks = ((span / unit).ceil() as usize).clamp(2, 8);
        TimeAxis {
            origin: (t_min / unit).floor() * unit,
            unit,
            span,
            ticks,
        }
    }

    fn x(&self, t: f64) -> f64 {
        (t - self.origin) / self.unit
    }

    fn label(&self, x: f64) -> String {
        time_label(self.origin + x * self.unit, self.span)
    }
}

/// Values spanning more than this ratio get a log y axis: otherwise the
/// small series (a 5 s unit stage under a 45 min benchmark) lie flat on 0.
const LOG_RATIO: f64 = 30.0;

/// One line per series over time: `x` is a run's start (seconds since the
/// epoch), labelled with its date; y from 0, or on a log scale when the
/// values span more than 30x. Named series get a legend to the right of the
/// plot, one row each.
pub fn lines(caption: &str, y_label: &str, series: &[(String, Vec<(f64, f64)>)]) -> String {
    let values = || series.iter().flat_map(|(_, pts)| pts.iter().map(|p| p.1));
    let y_max = values().fold(0.0_f64, f64::max);
    let y_min_positive = values().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let log = y_min_positive.is_finite() && y_max / y_min_positive > LOG_RATIO;
    let (t_min, t_max) = time_range(series.iter().flat_map(|(_, pts)| pts.iter().map(|p| p.0)));
    let axis = TimeAxis::new(t_min, t_max);
    let named = series.iter().any(|s| !s.0.is_empty());
    let rows = if named { series.len() } else { 0 };
    let height = HEIGHT.max(u32::try_from(60 + rows * LEGEND_ROW as usize).unwrap_or(HEIGHT));
    svg(
        |root| {
            let body = root
                .titled(caption, CAPTION_FONT)
                .map_err(|e| e.to_string())?;
            let plot = if named {
                let (plot, legend) = body.split_horizontally(WIDTH - LEGEND_W);
                draw_legend(&legend, series)?;
                plot
            } else {
                body
            };
            let mut builder = ChartBuilder::on(&plot);
            builder
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(72);
            let x_range = axis.x(t_min)..axis.x(t_max);
            if log {
                let (lo, hi) = (y_min_positive / 1.5, y_max * 1.5);
                let chart = builder
                    .build_cartesian_2d(x_range, (lo..hi).log_scale())
                    .map_err(|e| e.to_string())?;
                let y_label = format!("{y_label} (log scale)");
                draw_lines(chart, &axis, &y_label, series, lo)
            } else {
                let top = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
                let chart = builder
                    .build_cartesian_2d(x_range, 0.0..top)
                    .map_err(|e| e.to_string())?;
                draw_lines(chart, &axis, y_label, series, 0.0)
            }
        },
        height,
    )
}

type LineChart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

/// The mesh, a line and a dot per run for each series; values below
/// `floor` (zero on a log axis) are drawn at it.
fn draw_lines<Y>(
    mut chart: LineChart<'_, '_, Y>,
    axis: &TimeAxis,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    floor: f64,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .label_style(LABEL_FONT)
        .axis_desc_style(LABEL_FONT)
        // The bold lines at the labels only: the light ones in between were noise.
        .max_light_lines(0)
        .x_desc("run started (UTC)")
        .y_desc(y_label)
        .x_labels(axis.ticks)
        .x_label_formatter(&|x| axis.label(*x))
        .y_label_formatter(&|y| number(*y))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (_, points)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let at = |&(t, y): &(f64, f64)| (axis.x(t), y.max(floor));
        chart
            .draw_series(LineSeries::new(
                points.iter().map(at),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        // A dot per run: a single run, or a run apart from the rest, shows too.
        chart
            .draw_series(points.iter().map(|p| Circle::new(at(p), 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// An axis number without trailing zeros: `3000`, `2.5`, `0.05`.
fn number(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// The legend, one row per series: a swatch of its colour and its name.
fn draw_legend(area: &Draw<'_>, series: &[(String, Vec<(f64, f64)>)]) -> Result<(), String> {
    for (i, (name, _)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let y = i32::try_from(24 + i * LEGEND_ROW as usize).unwrap_or(i32::MAX);
        area.draw(&PathElement::new([(8, y), (34, y)], color.stroke_width(4)))
            .map_err(|e| e.to_string())?;
        area.draw(&Text::new(
            shorten(name, 28),
            (42, y - 7),
            LABEL_FONT.into_font(),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The x range of a time axis: the first run to the last, widened by an
/// hour each side when there is one time only (or none).
fn time_range(times: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = times.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
        (lo.min(t), hi.max(t))
    });
    if !lo.is_finite() {
        return (0.0, DAY);
    }
    if hi - lo < 60.0 {
        return (lo - 3_600.0, hi + 3_600.0);
    }
    (lo, hi)
}

/// A date on a time axis: the day when the runs span days, the day and the
/// time of day when they span hours.
fn time_label(epoch: f64, span: f64) -> String {
    #[allow(clippy::cast_possible_truncation)]
    let Ok(t) = jiff::Timestamp::from_second(epoch.round() as i64) else {
        return String::new();
    };
    let format = if span >= 3.0 * DAY {
        "%b %d"
    } else {
        "%b %d %H:%M"
    };
    t.strftime(format).to_string()
}

/// Horizontal bars: `(label, p50, p95)` per test, slowest on top.
pub fn bars(caption: &str, rows: &[(String, f64, f64)]) -> String {
    let n = rows.len().max(1);
    let x_max = rows.iter().map(|r| r.2.max(r.1)).fold(0.0_f64, f64::max);
    let x_max = if x_max > 0.0 { x_max * 1.1 } else { 1.0 };
    let labels: Vec<String> = rows.iter().map(|r| shorten(&r.0, 48)).collect();
    let height = u32::try_from(90 + 26 * n).unwrap_or(HEIGHT).max(160);
    #[allow(clippy::cast_precision_loss)]
    let y_max = n as f64;
    svg(
        |root| {
            let mut chart = ChartBuilder::on(root)
                .caption(caption, CAPTION_FONT)
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(360)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)
                .map_err(|e| e.to_string())?;
            let label_of = |y: &f64| {
                // Bars sit between integers; a label belongs at the middle.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let slot = y.floor() as usize;
                if (y - y.floor() - 0.5).abs() < 1e-9 && slot < labels.len() {
                    labels[labels.len() - 1 - slot].clone()
                } else {
                    String::new()
                }
            };
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(n * 2 + 1)
                .y_label_formatter(&label_of)
                .label_style(LABEL_FONT)
                .axis_desc_style(LABEL_FONT)
                .max_light_lines(0)
                .x_label_formatter(&|x| number(*x))
                .x_desc("seconds")
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, (_, p50, p95)) in rows.iter().enumerate() {
                #[allow(clippy::cast_precision_loss)]
                let y = (rows.len() - 1 - i) as f64;
                chart
                    .draw_series([
                        Rectangle::new(
                            [(0.0, y + 0.15), (*p95, y + 0.85)],
                            PALETTE[1].mix(0.5).filled(),
                        ),
                        Rectangle::new([(0.0, y + 0.3), (*p50, y + 0.7)], PALETTE[0].filled()),
                    ])
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        },
        height,
    )
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(max - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// Series per name from `(name, time, value)` points, each in time order.
pub fn series(points: impl Iterator<Item = (String, f64, f64)>) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut by: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (name, x, y) in points {
        by.entry(name).or_default().push((x, y));
    }
    by.into_iter()
        .map(|(k, mut v)| {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            (k, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z.
    const T0: f64 = 1_767_225_600.0;
    fn capture(svg: &str, re: &str) -> Vec<(f64, String)> {
        regex::Regex::new(re)
            .unwrap()
            .captures_iter(svg)
            .map(|c| (c[1].parse().unwrap(), c[2].to_string()))
            .collect()
    }

    #[test]
    fn a_line_chart_is_an_svg_with_its_caption_and_legend() {
        let s = lines(
            "flaky results per run",
            "%",
            &[
                (
                    "e2e".into(),
                    vec![(T0, 1.0), (T0 + DAY, 3.0), (T0 + 2.0 * DAY, 2.0)],
                ),
                ("unit".into(), vec![(T0, 0.5)]),
            ],
        );
        assert!(s.starts_with("<svg"), "{}", &s[..40]);
        assert!(s.contains("flaky results per run"));
        let legend = regex::Regex::new(r">\s*(e2e|unit)\s*</text>").unwrap();
        assert_eq!(legend.find_iter(&s).count(), 2, "one legend row each");
        assert!(s.contains("<polyline") && s.contains("<circle"));
    }

    #[test]
    fn the_time_axis_shows_dates_not_run_numbers() {
        let days: Vec<(f64, f64)> = (0..10).map(|d| (T0 + f64::from(d) * DAY, 1.0)).collect();
        let s = lines("by day", "s", &[(String::new(), days)]);
        assert!(s.contains("run started (UTC)"), "axis named");
        let labels: Vec<String> =
            capture(&s, r#"<text x="([0-9.]+)"[^>]*>\s*(Jan \d\d)\s*</text>"#)
                .into_iter()
                .map(|c| c.1)
                .collect();
        assert!(labels.len() >= 3, "{labels:?}");
        assert_eq!(labels[0], "Jan 01");
        let hours: Vec<(f64, f64)> = (0..6).map(|h| (T0 + f64::from(h) * 3600.0, 1.0)).collect();
        let s = lines("by hour", "s", &[(String::new(), hours)]);
        assert!(
            s.contains("Jan 01 00:00") && s.contains("Jan 01 02:00"),
            "hours when the runs span hours"
        );
        assert!(time_label(T0 + 2.5 * 3600.0, 6.0 * 3600.0).ends_with("02:30"));
        // One run: an hour either side, never an empty range.
        let (lo, hi) = time_range([T0].into_iter());
        assert!(lo < T0 && T0 < hi);
    }

    #[test]
    fn the_legend_is_beside_the_plot_never_over_it() {
        let series: Vec<(String, Vec<(f64, f64)>)> = (0..12)
            .map(|i| {
                let pts = (0..5)
                    .map(|d| (T0 + f64::from(d) * DAY, f64::from(i + d)))
                    .collect();
                (format!("stage{i}"), pts)
            })
            .collect();
        let s = lines("stage time", "s", &series);
        let edge = f64::from(WIDTH - LEGEND_W);
        let names = capture(&s, r#"<text x="([0-9.]+)"[^>]*>\s*(stage\d+)\s*</text>"#);
        assert_eq!(names.len(), 12, "one legend row per stage");
        assert!(names.iter().all(|(x, _)| *x >= edge), "{names:?}");
        let points = regex::Regex::new(r#"<circle cx="([0-9.]+)""#).unwrap();
        let xs: Vec<f64> = points
            .captures_iter(&s)
            .map(|c| c[1].parse().unwrap())
            .collect();
        assert_eq!(xs.len(), 60);
        assert!(xs.iter().all(|x| *x < edge), "{xs:?}");
        // Twelve rows fit: the chart grows rather than cutting the legend.
        let height = regex::Regex::new(r#"<svg[^>]*height="(\d+)""#).unwrap();
        let h: u32 = height.captures(&s).unwrap()[1].parse().unwrap();
        assert!(h >= 60 + 12 * LEGEND_ROW, "{h}");
    }

    #[test]
    fn values_far_apart_get_a_log_axis() {
        let series = |small: f64| {
            vec![
                (
                    "benchmark".to_string(),
                    vec![(T0, 3000.0), (T0 + DAY, 3000.0)],
                ),
                (
                    "unit".to_string(),
                    vec![(T0, small), (T0 + DAY, small * 2.0)],
                ),
            ]
        };
        let dots = |s: &str| -> Vec<f64> {
            regex::Regex::new(r#"<circle cx="[0-9.]+" cy="([0-9.]+)""#)
                .unwrap()
                .captures_iter(s)
                .map(|c| c[1].parse().unwrap())
                .collect()
        };
        let s = lines("stage time", "seconds", &series(5.0));
        assert!(s.contains("seconds (log scale)"));
        let y = dots(&s);
        // 5 s and 10 s lie apart, as far as 1500 s and 3000 s would.
        assert!((y[2] - y[3]).abs() > 20.0, "{y:?}");
        // Within 30x: a linear axis from 0.
        let s = lines("stage time", "seconds", &series(500.0));
        assert!(
            !s.contains("log scale") && s.contains(">\n0\n</text>"),
            "{s}"
        );
        assert_eq!(
            (number(3000.0), number(2.5), number(0.05), number(-0.0)),
            ("3000".into(), "2.5".into(), "0.05".into(), "0".into())
        );
    }

    #[test]
    fn twelve_stages_get_twelve_colours() {
        let series: Vec<(String, Vec<(f64, f64)>)> = (0..12)
            .map(|i| {
                (
                    format!("stage{i}"),
                    vec![(T0, 1.0), (T0 + DAY, f64::from(i))],
                )
            })
            .collect();
        let s = lines("stage time", "s", &series);
        let stroke = regex::Regex::new(r#"<polyline[^>]*stroke="(#[0-9A-Fa-f]{6})""#).unwrap();
        let colours: std::collections::BTreeSet<_> = stroke
            .captures_iter(&s)
            .map(|c| c[1].to_ascii_uppercase())
            .filter(|c| c != "#000000")
            .collect();
        assert!(colours.len() >= 12, "{colours:?}");
        let distinct: std::collections::BTreeSet<_> =
            PALETTE.iter().map(|c| (c.0, c.1, c.2)).collect();
        assert_eq!(distinct.len(), PALETTE.len());
    }

    #[test]
    fn a_bar_chart_labels_each_bar() {
        let s = bars(
            "slowest",
            &[
                ("t.py::slow".into(), 2.0, 3.0),
                ("t.py::quick".into(), 1.0, 1.5),
            ],
        );
        assert!(s.contains("t.py::slow") && s.contains("t.py::quick"));
        assert!(s.matches("<rect").count() >= 4);
        let empty = lines("nothing", "%", &[]);
        assert!(empty.starts_with("<svg"));
    }

    #[test]
    fn long_names_keep_their_end() {
        assert_eq!(shorten("abcdef", 4), "…def");
        assert_eq!(shorten("abc", 4), "abc");
    }
}
