//! Line charts drawn with plotters on a canvas. Every chart has a title, labelled axes and units.

use crate::components::canvas::Canvas;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use web_sys::HtmlCanvasElement;

pub const BLUE: RGBColor = RGBColor(37, 99, 235);
pub const ORANGE: RGBColor = RGBColor(234, 88, 12);
pub const GREY: RGBColor = RGBColor(148, 163, 184);
pub const INK: RGBColor = RGBColor(30, 41, 59);
pub const GREEN: RGBColor = RGBColor(5, 150, 105);

/// Distinct colours for many series (units, parameter tensors): Okabe & Ito's colour-blind-safe
/// set (blue, vermillion, bluish green first: the named colours above are close to them), then
/// slate for the rest. Tested: the first seven stay apart under simulated protanopia,
/// deuteranopia and tritanopia (`colour_blind_tests` below).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(37, 99, 235),
    RGBColor(234, 88, 12),
    RGBColor(5, 150, 105),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(30, 41, 59),
    RGBColor(148, 163, 184),
];

pub fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// One line (or set of dots) on a chart.
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
    pub dots: bool,
    /// Line width, or dot radius for dots.
    pub width: u32,
}

impl Series {
    pub fn line(label: &str, color: RGBColor, points: Vec<(f64, f64)>, width: u32) -> Self {
        Series { label: label.to_string(), color, points, dots: false, width }
    }

    pub fn dots(label: &str, color: RGBColor, points: Vec<(f64, f64)>, radius: u32) -> Self {
        Series { label: label.to_string(), color, points, dots: true, width: radius }
    }
}

#[derive(Clone, Copy)]
pub struct ChartSpec<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub log_y: bool,
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    /// An x interval to shade (e.g. the training interval), with its label.
    pub band: Option<(f64, f64, &'a str)>,
    /// A logarithmic x axis (training steps: the early ones get as much room as the late ones).
    pub log_x: bool,
}

/// A step count for a log axis' ticks: 1, 10, 100, 1k, 10k, 1M…, with a digit where needed.
fn step_label(v: f64) -> String {
    let (value, unit) = if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if value >= 10.0 || (value - value.round()).abs() < 0.05 { 0 } else { 1 };
    format!("{value:.digits$}{unit}")
}

fn bounds(series: &[Series], pick: impl Fn(&(f64, f64)) -> f64, log: bool) -> Option<(f64, f64)> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in series.iter().flat_map(|s| s.points.iter().map(&pick)) {
        if v.is_finite() && (!log || v > 0.0) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if lo > hi {
        return None;
    }
    if hi - lo < 1e-12 * hi.abs().max(1e-30) {
        return Some(if log { (lo / 2.0, hi * 2.0) } else { (lo - 1.0, hi + 1.0) });
    }
    Some((lo, hi))
}

/// The shared look of every chart's grid and axis labels. Font sizes are 12, 13 and 16 px only:
/// plotters measures text with an inline-styled span per size, and the Content-Security-Policy
/// (Trunk.toml) allows exactly those three styles by hash.
macro_rules! style_mesh {
    ($mesh:ident, $spec:ident) => {
        $mesh
            .x_desc($spec.x_label)
            .y_desc($spec.y_label)
            .label_style(("sans-serif", 12).into_font().color(&INK))
            .axis_desc_style(("sans-serif", 13).into_font().color(&INK))
            .light_line_style(RGBColor(241, 245, 249))
            .bold_line_style(RGBColor(226, 232, 240))
    };
}

/// Axis tick text on an axis spanning `span`: as many decimals as the tick spacing needs (plotters
/// puts at most ten ticks on an axis, at 1, 2 or 5 × 10ᵏ apart), so neighbouring ticks never read
/// the same ("0.01, 0.01" for 0.015 and 0.01); a spacing below 10⁻⁴ in scientific notation. Zero
/// reads "0", never "-0" (plotters places that tick at -0.0 or a rounding error from zero).
pub fn axis_number(v: f64, span: f64) -> String {
    let spacing = if span.is_finite() && span > 0.0 { span / 10.0 } else { 0.1 };
    let decimals = (-spacing.log10().floor()).max(0.0) as i32;
    if v.abs() < spacing * 1e-3 {
        return "0".into();
    }
    let trim = |s: String| if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    if v.abs() >= 1e6 {
        format!("{v:.1e}")
    } else if decimals == 0 || v.abs() >= 1000.0 && v.fract() == 0.0 {
        format!("{v:.0}")
    } else if decimals <= 4 {
        trim(format!("{v:.*}", decimals as usize))
    } else {
        let precision = (decimals + v.abs().log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.precision$e}");
        match s.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim(mantissa.to_string())),
            None => s,
        }
    }
}

/// Log-axis tick text: only 1, 2 and 5 × 10ᵏ are labelled (a narrow range gets a tick at every
/// digit, which would overprint), as plain decimals between 0.001 and 10,000.
fn log_tick(v: f64) -> String {
    if !(v > 0.0) {
        return String::new();
    }
    let e = v.log10().floor();
    let m = v / 10f64.powf(e);
    let keep = [1.0, 2.0, 5.0, 10.0].iter().any(|k| (m - k).abs() < 0.05);
    if !keep {
        String::new()
    } else if (1e-3..1e4).contains(&v) {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

/// Draws `series` on `canvas`. Non-finite or (on a log axis) non-positive values are skipped.
pub fn draw(canvas: &HtmlCanvasElement, spec: &ChartSpec, series: &[Series]) {
    if spec.log_x {
        // Drawn on log10(x) with ticks labelled in steps; x < 1 sits at 1.
        let at = |x: f64| x.max(1.0).log10();
        let moved: Vec<Series> = series
            .iter()
            .map(|s| Series {
                label: s.label.clone(),
                color: s.color,
                dots: s.dots,
                width: s.width,
                points: s.points.iter().map(|&(x, y)| (at(x), y)).collect(),
            })
            .collect();
        let x_range = spec.x_range.map(|(a, b)| (at(a), at(b).max(at(a) + 1.0)));
        // Labels at the decades only (1, 10, 100, 1k…): in-between ticks read as noise.
        let decade = |v: &f64| if (v - v.round()).abs() < 0.02 { step_label(10f64.powf(v.round())) } else { String::new() };
        return draw_on(canvas, &ChartSpec { x_range, ..*spec }, &moved, Some(&decade));
    }
    draw_on(canvas, spec, series, None)
}

/// [`draw`] for an x axis of whole things (layers): only whole numbers are labelled.
pub fn draw_whole_x(canvas: &HtmlCanvasElement, spec: &ChartSpec, series: &[Series]) {
    draw_on(canvas, spec, series, Some(&|v| if (v - v.round()).abs() < 1e-6 { format!("{v:.0}") } else { String::new() }))
}

/// `x_ticks`: the x axis's tick text (None: numbers, as [`axis_number`] writes them).
fn draw_on(canvas: &HtmlCanvasElement, spec: &ChartSpec, series: &[Series], x_ticks: Option<&dyn Fn(&f64) -> String>) {
    let Some(backend) = Canvas::on(canvas) else { return };
    let whole = backend.into_drawing_area();
    let _ = whole.fill(&WHITE);
    // The legend gets a strip of its own at the right, outside the data.
    let labelled: Vec<&Series> = series.iter().filter(|s| !s.label.is_empty()).collect();
    let root = if labelled.is_empty() {
        whole
    } else {
        let width = whole.dim_in_pixel().0 as i32;
        let chars = labelled.iter().map(|s| s.label.chars().count()).max().unwrap_or(0) as i32;
        let strip = (30 + 7 * chars).min(width * 2 / 5);
        let (plot_area, legend) = whole.split_horizontally(width - strip);
        draw_legend(&legend, &labelled);
        plot_area
    };
    let x = spec.x_range.or_else(|| bounds(series, |p| p.0, false)).unwrap_or((0.0, 1.0));
    let y = spec.y_range.or_else(|| bounds(series, |p| p.1, spec.log_y)).unwrap_or(if spec.log_y { (1e-4, 1.0) } else { (-1.0, 1.0) });
    let x_numbers = |v: &f64| axis_number(*v, x.1 - x.0);
    let x_ticks = x_ticks.unwrap_or(&x_numbers);
    let mut builder = ChartBuilder::on(&root);
    builder.caption(spec.title, ("sans-serif", 16).into_font().color(&INK)).margin(10).x_label_area_size(38).y_label_area_size(64);
    // Within a decade a log axis has no 1, 2 or 5 × 10ᵏ to label (a loss between 1.2 and 3):
    // such values read better on a linear axis with numbers than on a log one without.
    if spec.log_y && y.1 >= 4.0 * y.0 {
        let (lo, hi) = (y.0 * 0.8, y.1 * 1.25);
        let Ok(mut chart) = builder.build_cartesian_2d(x.0..x.1, (lo..hi).log_scale()) else { return };
        let mut mesh = chart.configure_mesh();
        style_mesh!(mesh, spec);
        let _ = mesh.x_label_formatter(x_ticks).y_label_formatter(&|v| log_tick(*v)).draw();
        plot(&mut chart, series, true, (x.0, x.1), (lo, hi));
    } else {
        let pad = (y.1 - y.0) * 0.08;
        let (lo, hi) = (y.0 - pad, y.1 + pad);
        let Ok(mut chart) = builder.build_cartesian_2d(x.0..x.1, lo..hi) else { return };
        let mut mesh = chart.configure_mesh();
        style_mesh!(mesh, spec);
        let _ = mesh.x_label_formatter(x_ticks).y_label_formatter(&|v| axis_number(*v, hi - lo)).draw();
        if let Some((a, b, label)) = spec.band {
            let _ = chart.draw_series(std::iter::once(Rectangle::new([(a, lo), (b, hi)], RGBColor(219, 234, 254).mix(0.45).filled())));
            let _ = chart.draw_series(std::iter::once(Text::new(
                label.to_string(),
                (a + (b - a) * 0.02, hi - (hi - lo) * 0.04),
                ("sans-serif", 12).into_font().color(&RGBColor(100, 116, 139)),
            )));
        }
        plot(&mut chart, series, false, (x.0, x.1), (lo, hi));
    }
    let _ = root.present();
}

/// Most points a line is drawn with as it is: a chart is ~600 px wide, so more only costs frame
/// time.
const MAX_LINE_POINTS: usize = 600;
/// Columns a longer line is summarised in (see [`columns`]).
const COLUMNS: usize = 300;
/// Most dots drawn per series.
const MAX_DOTS: usize = 2000;

/// A long line thinned for drawing: the points split into buckets along the line, each bucket
/// keeping its lowest and highest point (in their order), so spikes stay visible. For lines
/// whose x goes back (none of ours yet), which [`columns`] cannot summarise.
fn decimate(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let bucket = points.len().div_ceil(max / 2);
    let mut out = Vec::with_capacity(max + 2);
    for chunk in points.chunks(bucket) {
        let lo = chunk.iter().enumerate().min_by(|a, b| a.1 .1.total_cmp(&b.1 .1)).map(|(i, _)| i).unwrap_or(0);
        let hi = chunk.iter().enumerate().max_by(|a, b| a.1 .1.total_cmp(&b.1 .1)).map(|(i, _)| i).unwrap_or(0);
        let (a, b) = (lo.min(hi), lo.max(hi));
        out.push(chunk[a]);
        if b != a {
            out.push(chunk[b]);
        }
    }
    out
}

/// One column of a long line: its points' mean x and their lowest, typical and highest y.
#[derive(Debug, PartialEq)]
struct Column {
    x: f64,
    lo: f64,
    mid: f64,
    hi: f64,
}

/// A long line (x never going back) summarised in `n` equal columns of `x_range`: each column's
/// lowest and highest y (drawn as a band: the spread, spikes included) and its mean y (drawn as
/// the line: the trend), the geometric mean on a log axis. Drawn as it was — 800 jagged points
/// per series, one wide stroke each — the gradient chart alone cost ~10 ms of rasterising per
/// redraw on a 2-core machine, and the fit lab dropped frames.
fn columns(points: &[(f64, f64)], x_range: (f64, f64), n: usize, log_y: bool) -> Vec<Column> {
    let width = (x_range.1 - x_range.0).max(f64::MIN_POSITIVE);
    let mut out: Vec<Column> = Vec::with_capacity(n);
    let (mut at, mut count, mut sum_x, mut sum_y) = (usize::MAX, 0.0, 0.0, 0.0);
    let finish = |out: &mut Vec<Column>, count: f64, sum_x: f64, sum_y: f64| {
        // A column of one point keeps it exactly (early steps on a log-x chart).
        if let Some(c) = out.last_mut().filter(|_| count > 1.0) {
            c.x = sum_x / count;
            c.mid = if log_y { (sum_y / count).exp() } else { sum_y / count };
        }
    };
    for &(x, y) in points {
        let column = (((x - x_range.0) / width * n as f64).floor().max(0.0) as usize).min(n - 1);
        if column != at {
            finish(&mut out, count, sum_x, sum_y);
            (at, count, sum_x, sum_y) = (column, 0.0, 0.0, 0.0);
            out.push(Column { x, lo: y, mid: y, hi: y });
        }
        let c = out.last_mut().expect("pushed");
        (c.lo, c.hi) = (c.lo.min(y), c.hi.max(y));
        count += 1.0;
        sum_x += x;
        sum_y += if log_y { y.ln() } else { y };
    }
    finish(&mut out, count, sum_x, sum_y);
    out
}

fn plot<'a, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, Canvas, Cartesian2d<RangedCoordf64, Y>>,
    series: &[Series],
    log_y: bool,
    x: (f64, f64),
    y: (f64, f64),
) {
    let inside = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite() && (!log_y || p.1 > 0.0) && p.0 >= x.0 && p.0 <= x.1 && p.1 >= y.0 && p.1 <= y.1;
    for s in series {
        let color = s.color;
        if s.dots {
            let step = s.points.len().div_ceil(MAX_DOTS).max(1);
            let pts: Vec<(f64, f64)> = s.points.iter().step_by(step).copied().filter(|p| inside(p)).collect();
            let r = s.width.max(1);
            if let Ok(a) = chart.draw_series(pts.into_iter().map(move |p| Circle::new(p, r, color.mix(0.6).filled()))) {
                if !s.label.is_empty() {
                    a.label(s.label.as_str()).legend(move |(px, py)| Circle::new((px + 8, py), 3, color.filled()));
                }
            }
            continue;
        }
        let width = s.width;
        let legend = |a: &mut plotters::chart::SeriesAnno<'a, Canvas>| {
            if !s.label.is_empty() {
                a.label(s.label.as_str()).legend(move |(px, py)| PathElement::new(vec![(px, py), (px + 16, py)], color.stroke_width(2)));
            }
        };
        if s.points.len() > MAX_LINE_POINTS && s.points.windows(2).all(|w| !(w[1].0 < w[0].0)) {
            let kept: Vec<(f64, f64)> = s.points.iter().copied().filter(|p| inside(p)).collect();
            let cols = columns(&kept, x, COLUMNS, log_y);
            let band: Vec<(f64, f64)> = cols.iter().map(|c| (c.x, c.hi)).chain(cols.iter().rev().map(|c| (c.x, c.lo))).collect();
            let _ = chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.22).filled())));
            if let Ok(a) = chart.draw_series(LineSeries::new(cols.iter().map(|c| (c.x, c.mid)), color.stroke_width(width))) {
                legend(a);
            }
            continue;
        }
        // Break the line where values leave the chart rather than drawing spikes.
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for p in &decimate(&s.points, MAX_LINE_POINTS) {
            if inside(p) {
                segments.last_mut().expect("non-empty").push(*p);
            } else if !segments.last().expect("non-empty").is_empty() {
                segments.push(Vec::new());
            }
        }
        // A line of one point (a first evaluation) shows as a dot.
        if let [seg] = segments.as_slice() {
            if seg.len() == 1 {
                let _ = chart.draw_series(std::iter::once(Circle::new(seg[0], width + 2, color.filled())));
            }
        }
        let mut first = true;
        for seg in segments.into_iter().filter(|s| !s.is_empty()) {
            if let Ok(a) = chart.draw_series(LineSeries::new(seg, color.stroke_width(width))) {
                if first {
                    legend(a);
                    first = false;
                }
            }
        }
    }
}

/// Each labelled series' swatch (a line, or a dot) and name, one per row from the top.
fn draw_legend(area: &DrawingArea<Canvas, plotters::coord::Shift>, labelled: &[&Series]) {
    for (i, s) in labelled.iter().enumerate() {
        let y = 44 + 18 * i as i32;
        let color = s.color;
        if s.dots {
            let _ = area.draw(&Circle::new((12, y), 3, color.filled()));
        } else {
            let _ = area.draw(&PathElement::new(vec![(4, y), (20, y)], color.stroke_width(2)));
        }
        let _ = area.draw(&Text::new(s.label.clone(), (26, y - 7), ("sans-serif", 12).into_font().color(&INK)));
    }
}

#[cfg(test)]
mod colour_blind_tests {
    use super::PALETTE;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn linear(c: u8) -> f64 {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }

    /// CIELAB (D65) of a linear-light RGB.
    fn lab([r, g, b]: [f64; 3]) -> [f64; 3] {
        let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
        let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
        let f = |t: f64| if t > 0.008856 { t.cbrt() } else { 7.787 * t + 16.0 / 116.0 };
        [116.0 * f(y) - 16.0, 500.0 * (f(x) - f(y)), 200.0 * (f(y) - f(z))]
    }

    /// Machado, Oliveira & Fernandes (2009), severity 1: what a dichromat sees, in linear RGB.
    const PROTAN: [[f64; 3]; 3] = [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]];
    const DEUTAN: [[f64; 3]; 3] = [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]];
    const TRITAN: [[f64; 3]; 3] = [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]];
    const NORMAL: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

    fn seen(m: &[[f64; 3]; 3], c: plotters::style::RGBColor) -> [f64; 3] {
        let v = [linear(c.0), linear(c.1), linear(c.2)];
        let row = |i: usize| (m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2]).clamp(0.0, 1.0);
        lab([row(0), row(1), row(2)])
    }

    #[wasm_bindgen_test]
    fn the_series_colours_stay_apart_for_colour_blind_eyes() {
        for (vision, m) in [("normal", NORMAL), ("protanopia", PROTAN), ("deuteranopia", DEUTAN), ("tritanopia", TRITAN)] {
            for i in 0..7 {
                for j in i + 1..7 {
                    let (a, b) = (seen(&m, PALETTE[i]), seen(&m, PALETTE[j]));
                    let d = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt();
                    assert!(d >= 12.0, "{vision}: colours {i} and {j} differ by ΔE {d:.1}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tick_tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn ticks_have_the_decimals_their_spacing_needs_and_zero_has_no_sign() {
        let cases = [
            // (tick, axis span, text)
            (-0.0, 2.0, "0"),
            (-1e-17, 2.0, "0"),
            (-0.2, 2.0, "-0.2"),
            (1.0, 2.0, "1"),
            (0.25, 0.5, "0.25"),
            // Ticks 0.005 apart on an axis 0.04 wide: 0.015 and 0.01 read differently.
            (0.015, 0.04, "0.015"),
            (0.01, 0.04, "0.01"),
            (-0.005, 0.04, "-0.005"),
            (-1e-18, 0.04, "0"),
            // A spacing below 10⁻⁴: scientific, with the digits the spacing needs.
            (1.5e-5, 2e-5, "1.5e-5"),
            (5e-5, 2e-4, "5e-5"),
            (-1e-4, 2e-4, "-1e-4"),
            (1500.0, 3000.0, "1500"),
            (2.5e6, 1e7, "2.5e6"),
            (3.0, f64::NAN, "3"),
        ];
        for (v, span, want) in cases {
            assert_eq!(axis_number(v, span), want, "{v:e} on an axis {span:e} wide");
        }
    }
}

#[cfg(test)]
mod column_tests {
    use super::{columns, Column};
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn a_long_line_is_summarised_per_column_by_its_range_and_mean() {
        let points = [(0.0, 1.0), (0.1, 3.0), (0.6, 2.0), (0.9, 4.0), (1.0, 6.0)];
        let cols = columns(&points, (0.0, 1.0), 2, false);
        assert_eq!(cols, [Column { x: 0.05, lo: 1.0, mid: 2.0, hi: 3.0 }, Column { x: 2.5 / 3.0, lo: 2.0, mid: 4.0, hi: 6.0 }]);
        // On a log axis the typical value is the geometric mean; empty columns are left out.
        let cols = columns(&[(0.0, 1.0), (0.2, 4.0), (9.5, 10.0)], (0.0, 10.0), 10, true);
        assert_eq!(cols.len(), 2);
        assert!((cols[0].mid - 2.0).abs() < 1e-12 && cols[1] == Column { x: 9.5, lo: 10.0, mid: 10.0, hi: 10.0 }, "{cols:?}");
    }
}
