//! The HTML report's charts, drawn by `plotters` into SVG strings that the
//! page embeds inline (no script, no file beside the page).

use std::collections::BTreeMap;

use plotters::prelude::*;

const WIDTH: u32 = 880;
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
                crate::analytics::render::html::escape(&e)
            );
        }
    }
    out
}

/// One line per series over run numbers 1..=runs; y from 0.
pub fn lines(
    caption: &str,
    y_label: &str,
    runs: usize,
    series: &[(String, Vec<(usize, f64)>)],
) -> String {
    let y_max = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    #[allow(clippy::cast_precision_loss)]
    let x_max = runs.max(2) as f64;
    svg(
        |root| {
            let mut chart = ChartBuilder::on(root)
                .caption(caption, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(1.0..x_max, 0.0..y_max)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("run (oldest to newest)")
                .y_desc(y_label)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, (name, points)) in series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                #[allow(clippy::cast_precision_loss)]
                let pts = points.iter().map(|&(x, y)| (x as f64, y));
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(|e| e.to_string())?
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                    });
            }
            if series.len() > 1 || series.iter().any(|s| !s.0.is_empty()) {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.3))
                    .position(SeriesLabelPosition::UpperLeft)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        },
        HEIGHT,
    )
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
                .caption(caption, ("sans-serif", 18))
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

/// Series per name from `(name, run number, value)` points.
pub fn series(
    points: impl Iterator<Item = (String, usize, f64)>,
) -> Vec<(String, Vec<(usize, f64)>)> {
    let mut by: BTreeMap<String, Vec<(usize, f64)>> = BTreeMap::new();
    for (name, x, y) in points {
        by.entry(name).or_default().push((x, y));
    }
    by.into_iter()
        .map(|(k, mut v)| {
            v.sort_by_key(|p| p.0);
            (k, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_is_an_svg_with_its_caption_and_legend() {
        let s = lines(
            "flake rate",
            "%",
            3,
            &[
                ("e2e".into(), vec![(1, 1.0), (2, 3.0), (3, 2.0)]),
                ("unit".into(), vec![(1, 0.5)]),
            ],
        );
        assert!(s.starts_with("<svg"), "{}", &s[..40]);
        assert!(s.contains("flake rate"));
        assert!(s.contains("e2e") && s.contains("unit"));
        assert!(s.contains("<polyline"));
    }

    #[test]
    fn twelve_stages_get_twelve_colours() {
        let series: Vec<(String, Vec<(usize, f64)>)> = (0..12)
            .map(|i| (format!("stage{i}"), vec![(1, 1.0), (2, f64::from(i))]))
            .collect();
        let s = lines("stage time", "s", 2, &series);
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
        let empty = lines("nothing", "%", 0, &[]);
        assert!(empty.starts_with("<svg"));
    }

    #[test]
    fn long_names_keep_their_end() {
        assert_eq!(shorten("abcdef", 4), "…def");
        assert_eq!(shorten("abc", 4), "abc");
    }
}
