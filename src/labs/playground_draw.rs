//! Drawing the playground: the output heatmap with its points, and the network graph (each
//! neuron's own heatmap, links coloured by sign and sized by weight). Plain canvas 2D: the
//! heatmap is one `ImageData` per frame, drawn from the snapshot, never from the training loop.

use engine::data::playground::Point;
use engine::lab::playground::{NeuronMap, PlaygroundView, EXTENT, GRID, NEURON_GRID};
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

pub const ORANGE: [u8; 3] = [245, 147, 34];
pub const BLUE: [u8; 3] = [8, 119, 189];
pub const GREEN: [u8; 3] = [22, 163, 74];
const CLASS: [[u8; 3]; 3] = [ORANGE, BLUE, GREEN];

/// Plot area of the heatmap canvas (pixels): left, top, side.
pub const PLOT: (f64, f64, f64) = (34.0, 8.0, 400.0);

fn ctx(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten()?.dyn_into().ok()
}

fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    [0, 1, 2].map(|i| (a[i] as f32 + (b[i] as f32 - a[i] as f32) * t) as u8)
}

/// Orange (0) → white (0.5) → blue (1).
pub fn diverging(t: f32) -> [u8; 3] {
    if t < 0.5 {
        mix(ORANGE, [255, 255, 255], t * 2.0)
    } else {
        mix([255, 255, 255], BLUE, (t - 0.5) * 2.0)
    }
}

fn css([r, g, b]: [u8; 3]) -> String {
    format!("rgb({r},{g},{b})")
}

/// Plane coordinates ⇄ heatmap canvas pixels.
pub fn to_px(x: f32, y: f32) -> (f64, f64) {
    let (l, t, s) = PLOT;
    (l + (x + EXTENT) as f64 / (2.0 * EXTENT as f64) * s, t + (EXTENT - y) as f64 / (2.0 * EXTENT as f64) * s)
}

pub fn from_px(px: f64, py: f64) -> Option<(f32, f32)> {
    let (l, t, s) = PLOT;
    let (u, v) = ((px - l) / s, (py - t) / s);
    ((0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&v))
        .then(|| ((-EXTENT as f64 + u * 2.0 * EXTENT as f64) as f32, (EXTENT as f64 - v * 2.0 * EXTENT as f64) as f32))
}

fn point_color(p: &Point, classes: usize) -> [u8; 3] {
    if classes == 0 {
        diverging((p.label + 1.0) / 2.0)
    } else {
        CLASS[(p.label as usize).min(2)]
    }
}

pub fn draw_heatmap(canvas: &HtmlCanvasElement, v: &PlaygroundView, show_test: bool, discretize: bool) {
    let Some(c) = ctx(canvas) else { return };
    let (l, t, s) = PLOT;
    let side = s as usize;
    let scale = side / GRID;
    let mut rgba = vec![255u8; side * side * 4];
    for row in 0..GRID {
        for col in 0..GRID {
            let i = row * GRID + col;
            let value = v.heat[i] as f32 / 255.0;
            let color = if v.classes > 2 {
                let base = CLASS[(v.heat_class[i] as usize).min(2)];
                let conf = ((value - 1.0 / v.classes as f32) / (1.0 - 1.0 / v.classes as f32)).clamp(0.0, 1.0);
                mix([255, 255, 255], base, if discretize { 0.6 } else { 0.15 + 0.6 * conf })
            } else if discretize {
                if value >= 0.5 {
                    mix([255, 255, 255], BLUE, 0.55)
                } else {
                    mix([255, 255, 255], ORANGE, 0.55)
                }
            } else {
                mix([255, 255, 255], diverging(value), 0.75)
            };
            for dy in 0..scale {
                for dx in 0..scale {
                    let o = ((row * scale + dy) * side + col * scale + dx) * 4;
                    rgba[o..o + 3].copy_from_slice(&color);
                }
            }
        }
    }
    c.set_fill_style_str("#ffffff");
    c.fill_rect(0.0, 0.0, canvas.width() as f64, canvas.height() as f64);
    if let Ok(img) = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), side as u32, side as u32) {
        let _ = c.put_image_data(&img, l, t);
    }
    // Axes: ticks every 2 units.
    c.set_fill_style_str("#475569");
    c.set_font("11px sans-serif");
    for k in (-6..=6).step_by(2) {
        let (px, _) = to_px(k as f32, 0.0);
        let (_, py) = to_px(0.0, k as f32);
        c.set_text_align("center");
        let _ = c.fill_text(&k.to_string(), px, t + s + 14.0);
        c.set_text_align("right");
        let _ = c.fill_text(&k.to_string(), l - 5.0, py + 4.0);
    }
    c.set_text_align("center");
    let _ = c.fill_text("x₁", l + s / 2.0, t + s + 28.0);
    let _ = c.fill_text("x₂", 8.0, t + s / 2.0);
    c.set_stroke_style_str("#cbd5e1");
    c.stroke_rect(l, t, s, s);
    let dots = |pts: &[Point], stroke: &str| {
        for p in pts {
            let (px, py) = to_px(p.x, p.y);
            c.begin_path();
            let _ = c.arc(px, py, 3.5, 0.0, std::f64::consts::TAU);
            c.set_fill_style_str(&css(point_color(p, v.classes)));
            c.fill();
            c.set_stroke_style_str(stroke);
            c.set_line_width(1.0);
            c.stroke();
        }
    };
    dots(&v.train, "#ffffff");
    if show_test {
        dots(&v.test, "#111827");
    }
}

/// Where the graph's nodes sit: by column (inputs, hidden layers, outputs), each node's centre.
pub struct GraphLayout {
    pub columns: Vec<Vec<(f64, f64)>>,
    pub node: f64,
}

pub fn graph_layout(v: &PlaygroundView, width: f64) -> GraphLayout {
    let mut sizes: Vec<usize> = v.neurons.iter().map(|l| l.len()).collect();
    sizes.push(v.weights.last().map(|w| w.len() / sizes.last().copied().unwrap_or(1).max(1)).unwrap_or(1));
    let node = 34.0;
    let gap = (width - 60.0) / (sizes.len() - 1).max(1) as f64;
    let columns =
        sizes.iter().enumerate().map(|(c, &n)| (0..n).map(|i| (30.0 + c as f64 * gap, 24.0 + i as f64 * (node + 8.0) + node / 2.0)).collect()).collect();
    GraphLayout { columns, node }
}

pub fn graph_height(v: &PlaygroundView) -> f64 {
    let most = v.neurons.iter().map(|l| l.len()).max().unwrap_or(1).max(3);
    40.0 + most as f64 * 42.0
}

fn draw_map(c: &CanvasRenderingContext2d, m: &NeuronMap, x: f64, y: f64, size: f64) {
    let n = NEURON_GRID;
    let mut rgba = vec![255u8; n * n * 4];
    for (i, &b) in m.map.iter().enumerate() {
        rgba[i * 4..i * 4 + 3].copy_from_slice(&diverging(b as f32 / 255.0));
    }
    if let Ok(img) = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), n as u32, n as u32) {
        let _ = c.put_image_data(&img, (x - n as f64 / 2.0).round(), (y - n as f64 / 2.0).round());
    }
    c.set_stroke_style_str("#94a3b8");
    c.stroke_rect(x - size / 2.0 + 5.0, y - size / 2.0 + 5.0, size - 10.0, size - 10.0);
}

pub fn draw_graph(canvas: &HtmlCanvasElement, v: &PlaygroundView, highlight: Option<(usize, usize, usize)>) {
    let Some(c) = ctx(canvas) else { return };
    let layout = graph_layout(v, canvas.width() as f64);
    c.set_fill_style_str("#ffffff");
    c.fill_rect(0.0, 0.0, canvas.width() as f64, canvas.height() as f64);
    let max_w = v.weights.iter().flatten().fold(0.0f32, |a, &w| a.max(w.abs())).max(1e-6);
    for (l, w) in v.weights.iter().enumerate() {
        let (from, to) = (&layout.columns[l], &layout.columns[l + 1]);
        for (i, a) in from.iter().enumerate() {
            for (j, b) in to.iter().enumerate() {
                let Some(&weight) = w.get(i * to.len() + j) else { continue };
                let hot = highlight == Some((l, i, j));
                c.set_stroke_style_str(&css(if weight >= 0.0 { BLUE } else { ORANGE }));
                c.set_global_alpha(if hot { 1.0 } else { 0.35 + 0.6 * (weight.abs() / max_w) as f64 });
                c.set_line_width(if hot { 5.0 } else { (0.5 + 5.0 * (weight.abs() / max_w) as f64).min(6.0) });
                c.begin_path();
                c.move_to(a.0 + layout.node / 2.0, a.1);
                c.line_to(b.0 - layout.node / 2.0, b.1);
                c.stroke();
            }
        }
    }
    c.set_global_alpha(1.0);
    c.set_line_width(1.0);
    c.set_font("11px sans-serif");
    c.set_text_align("center");
    c.set_fill_style_str("#475569");
    for (col, maps) in v.neurons.iter().enumerate() {
        for (i, m) in maps.iter().enumerate() {
            let (x, y) = layout.columns[col][i];
            draw_map(&c, m, x, y, layout.node);
            if col == 0 {
                c.set_fill_style_str("#475569");
                let _ = c.fill_text(v.feature_names.get(i).map(String::as_str).unwrap_or(""), x, y + layout.node / 2.0 + 6.0);
            }
        }
        let label = if col == 0 { "inputs".to_string() } else { format!("layer {col}") };
        c.set_fill_style_str("#64748b");
        let _ = c.fill_text(&label, layout.columns[col][0].0, 12.0);
    }
    let outputs = layout.columns.last().expect("an output column");
    for (k, &(x, y)) in outputs.iter().enumerate() {
        c.begin_path();
        let _ = c.arc(x, y, 11.0, 0.0, std::f64::consts::TAU);
        c.set_fill_style_str(&css(if v.classes > 2 { CLASS[k.min(2)] } else { [100, 116, 139] }));
        c.fill();
    }
    let _ = c.fill_text("output", outputs[0].0, 12.0);
}

/// The link nearest to (px, py) within 5 pixels: (layer, from, to).
pub fn link_at(v: &PlaygroundView, width: f64, px: f64, py: f64) -> Option<(usize, usize, usize)> {
    let layout = graph_layout(v, width);
    let mut best = None;
    let mut best_d = 5.0;
    for l in 0..v.weights.len() {
        let (from, to) = (&layout.columns[l], &layout.columns[l + 1]);
        for (i, a) in from.iter().enumerate() {
            for (j, b) in to.iter().enumerate() {
                let (ax, ay, bx, by) = (a.0 + layout.node / 2.0, a.1, b.0 - layout.node / 2.0, b.1);
                let (dx, dy) = (bx - ax, by - ay);
                let t = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
                let d = ((ax + t * dx - px).powi(2) + (ay + t * dy - py).powi(2)).sqrt();
                if d < best_d {
                    best_d = d;
                    best = Some((l, i, j));
                }
            }
        }
    }
    best
}

/// The neuron under (px, py): (column, index).
pub fn neuron_at(v: &PlaygroundView, width: f64, px: f64, py: f64) -> Option<(usize, usize)> {
    let layout = graph_layout(v, width);
    for (c, col) in layout.columns.iter().enumerate().take(v.neurons.len()) {
        for (i, &(x, y)) in col.iter().enumerate() {
            if (px - x).abs() < layout.node / 2.0 && (py - y).abs() < layout.node / 2.0 {
                return Some((c, i));
            }
        }
    }
    None
}
