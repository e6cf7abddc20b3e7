//! Pixel views of the CNN lab: filters, feature maps and test images are laid out as tiles and
//! painted in one `putImageData` per canvas (thousands of `fillRect`s would cost frames).

use engine::lab::cnn::{FeatureMaps, FilterBank, WrongImage};
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

/// One small image: `w × h` values drawn at `scale` pixels per value.
pub struct Tile<'a> {
    pub w: usize,
    pub h: usize,
    pub values: &'a [f32],
    pub colors: Colors,
}

#[derive(Clone, Copy)]
pub enum Colors {
    /// Black (lo) to white (hi).
    Grey { lo: f32, hi: f32 },
    /// Blue (−m) through white (0) to red (+m).
    Diverging { m: f32 },
}

impl Colors {
    fn rgb(self, v: f32) -> [u8; 3] {
        match self {
            Colors::Grey { lo, hi } => {
                let t = if hi > lo { ((v - lo) / (hi - lo)).clamp(0.0, 1.0) } else { 0.0 };
                let g = (t * 255.0) as u8;
                [g, g, g]
            }
            Colors::Diverging { m } => {
                let t = if m > 0.0 { (v / m).clamp(-1.0, 1.0) } else { 0.0 };
                let fade = |c: f32| (255.0 + (c - 255.0) * t.abs()) as u8;
                if t >= 0.0 {
                    [fade(220.0), fade(38.0), fade(38.0)]
                } else {
                    [fade(37.0), fade(99.0), fade(235.0)]
                }
            }
        }
    }
}

pub fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten().and_then(|c| c.dyn_into().ok())
}

/// A context for a canvas that is read back often (the drawing pad).
pub fn readable_context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"willReadFrequently".into(), &true.into());
    canvas.get_context_with_context_options("2d", &options).ok().flatten().and_then(|c| c.dyn_into().ok())
}

/// Tiles in rows of `cols`, each `scale` px per value with `gap` px between, starting `top` px
/// down (room for a caption). Resizes the canvas to fit and paints the background white.
pub fn paint_tiles(canvas: &HtmlCanvasElement, tiles: &[Tile], cols: usize, scale: usize, gap: usize, top: usize, caption_h: usize) {
    let Some((width, height, rgba)) = tile_pixels(tiles, cols, scale, gap, top, caption_h) else {
        canvas.set_width(1);
        canvas.set_height(1);
        return;
    };
    if canvas.width() as usize != width || canvas.height() as usize != height {
        canvas.set_width(width as u32);
        canvas.set_height(height as u32);
    }
    if let (Some(ctx), Ok(data)) = (context(canvas), ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), width as u32, height as u32)) {
        let _ = ctx.put_image_data(&data, 0.0, 0.0);
    }
}

/// The RGBA pixels of [`paint_tiles`]' layout, with its width and height (`None`: no tiles).
/// Each value's colour is computed once and its row of pixels copied `scale` times down: per
/// pixel, the colour cost ~7 ns, a tenth of a core while LeNet-5's maps redrew at 30 Hz.
fn tile_pixels(tiles: &[Tile], cols: usize, scale: usize, gap: usize, top: usize, caption_h: usize) -> Option<(usize, usize, Vec<u8>)> {
    let first = tiles.first()?;
    let (tw, th) = (first.w * scale, first.h * scale);
    let cols = cols.max(1).min(tiles.len());
    let rows = tiles.len().div_ceil(cols);
    let width = cols * (tw + gap) + gap;
    let height = top + rows * (th + gap + caption_h) + gap;
    let mut rgba = vec![255u8; width * height * 4];
    let mut row = Vec::with_capacity(tw * 4);
    for (t, tile) in tiles.iter().enumerate() {
        let (x0, y0) = (gap + (t % cols) * (tw + gap), top + gap + (t / cols) * (th + gap + caption_h));
        // Tiles of a canvas share one size; a different one is cut to it.
        for vy in 0..tile.h.min(first.h) {
            row.clear();
            for vx in 0..tile.w.min(first.w) {
                let [r, g, b] = tile.colors.rgb(tile.values.get(vy * tile.w + vx).copied().unwrap_or(0.0));
                for _ in 0..scale {
                    row.extend_from_slice(&[r, g, b, 255]);
                }
            }
            for sy in 0..scale {
                let at = ((y0 + vy * scale + sy) * width + x0) * 4;
                rgba[at..at + row.len()].copy_from_slice(&row);
            }
        }
    }
    Some((width, height, rgba))
}

/// Where tile `t` starts (for captions drawn on top).
pub fn tile_origin(t: usize, cols: usize, tw: usize, th: usize, gap: usize, top: usize, caption_h: usize) -> (f64, f64) {
    ((gap + (t % cols) * (tw + gap)) as f64, (top + gap + (t / cols) * (th + gap + caption_h)) as f64)
}

/// A conv layer's filters: one column per filter, one row per input channel, in a diverging
/// scale shared by the whole layer (so strong and weak filters compare).
pub fn draw_filters(canvas: &HtmlCanvasElement, bank: &FilterBank) {
    let m = bank.weights.iter().fold(0.0f32, |a, &w| a.max(w.abs()));
    let kk = bank.k * bank.k;
    let mut tiles = Vec::with_capacity(bank.filters * bank.channels);
    for c in 0..bank.channels {
        for f in 0..bank.filters {
            let at = (f * bank.channels + c) * kk;
            tiles.push(Tile { w: bank.k, h: bank.k, values: &bank.weights[at..at + kk], colors: Colors::Diverging { m } });
        }
    }
    let scale = if bank.channels > 1 { (30 / bank.k.max(1)).clamp(3, 6) } else { (72 / bank.k.max(1)).clamp(4, 18) };
    // A gap as wide as a weight cell (at least 6 px), so filters read as separate squares.
    paint_tiles(canvas, &tiles, bank.filters, scale, scale.max(6), 0, 0);
}

/// One layer's feature maps for the probe image, each map on its own grey scale.
pub fn draw_maps(canvas: &HtmlCanvasElement, maps: &FeatureMaps) {
    let size = maps.side * maps.side;
    let ranges: Vec<(f32, f32)> =
        maps.values.chunks(size.max(1)).map(|m| m.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))).collect();
    let tiles: Vec<Tile> = maps
        .values
        .chunks(size.max(1))
        .zip(&ranges)
        .map(|(values, &(lo, hi))| Tile { w: maps.side, h: maps.side, values, colors: Colors::Grey { lo, hi } })
        .collect();
    // At least ~70 px a map, whatever its side (a 5×5 pooled map is drawn 14× up).
    let scale = (72usize.div_ceil(maps.side.max(1))).clamp(3, 16);
    paint_tiles(canvas, &tiles, 8, scale, 6, 0, 0);
}

/// A single 28×28 image given as bytes.
pub fn draw_image(canvas: &HtmlCanvasElement, pixels: &[u8], scale: usize) {
    let values: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    let side = (values.len() as f64).sqrt() as usize;
    paint_tiles(canvas, &[Tile { w: side, h: side, values: &values, colors: Colors::Grey { lo: 0.0, hi: 1.0 } }], 1, scale, 0, 0, 0);
}

/// Tile layout of the wrong-images panel (shared with its click handler).
pub const WRONG_COLS: usize = 6;
pub const WRONG_SCALE: usize = 2;
pub const WRONG_GAP: usize = 8;
/// Two caption lines: the true class with an arrow, then the guess and its confidence.
pub const WRONG_CAPTION: usize = 26;

/// The most confidently wrong test images, captioned "true → predicted (confidence)".
pub fn draw_wrong(canvas: &HtmlCanvasElement, wrong: &[WrongImage], classes: &[String]) {
    let values: Vec<Vec<f32>> = wrong.iter().map(|w| w.pixels.iter().map(|&p| p as f32 / 255.0).collect()).collect();
    let tiles: Vec<Tile> = values.iter().map(|v| Tile { w: 28, h: 28, values: v, colors: Colors::Grey { lo: 0.0, hi: 1.0 } }).collect();
    let cols = WRONG_COLS;
    paint_tiles(canvas, &tiles, cols, WRONG_SCALE, WRONG_GAP, 0, WRONG_CAPTION);
    let Some(ctx) = context(canvas) else { return };
    ctx.set_font("10px system-ui, sans-serif");
    ctx.set_fill_style_str("#334155");
    let side = 28 * WRONG_SCALE;
    for (t, w) in wrong.iter().enumerate() {
        let (x, y) = tile_origin(t, cols.min(wrong.len()), side, side, WRONG_GAP, 0, WRONG_CAPTION);
        let name = |c: usize| classes.get(c).cloned().unwrap_or_default();
        let _ = ctx.fill_text(&format!("{} →", short(&name(w.label))), x, y + side as f64 + 11.0);
        let _ = ctx.fill_text(&format!("{} {:.0}%", short(&name(w.predicted)), w.confidence * 100.0), x, y + side as f64 + 22.0);
    }
}

fn short(name: &str) -> String {
    name.chars().take(7).collect()
}

/// Which wrong image is under canvas pixel (px, py).
pub fn wrong_at(count: usize, px: f64, py: f64) -> Option<usize> {
    let side = (28 * WRONG_SCALE) as f64;
    let cols = WRONG_COLS.min(count).max(1);
    let col = ((px - WRONG_GAP as f64) / (side + WRONG_GAP as f64)).floor();
    let row = ((py - WRONG_GAP as f64) / (side + (WRONG_GAP + WRONG_CAPTION) as f64)).floor();
    if col < 0.0 || row < 0.0 || col as usize >= cols {
        return None;
    }
    let t = row as usize * cols + col as usize;
    (t < count).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn tiles_are_scaled_blocks_in_a_white_layout() {
        let grey = Colors::Grey { lo: 0.0, hi: 1.0 };
        let (a, b) = ([0.0, 1.0], [1.0, 0.0]);
        let tiles = [Tile { w: 2, h: 1, values: &a, colors: grey }, Tile { w: 2, h: 1, values: &b, colors: grey }];
        // Two 2×1 tiles side by side at 2 px per value, 1 px gaps, 3 px of caption room on top.
        let (w, h, px) = tile_pixels(&tiles, 2, 2, 1, 3, 0).unwrap();
        assert_eq!((w, h), (2 * (4 + 1) + 1, 3 + 2 + 1 + 1));
        let at = |x: usize, y: usize| px[(y * w + x) * 4];
        let rows: Vec<Vec<u8>> = (0..h).map(|y| (0..w).map(|x| at(x, y)).collect()).collect();
        let white = vec![255; w];
        let tile_row = vec![255, 0, 0, 255, 255, 255, 255, 255, 0, 0, 255];
        assert_eq!(rows, [white.clone(), white.clone(), white.clone(), white.clone(), tile_row.clone(), tile_row, white]);
        assert!(px.chunks(4).all(|p| p[3] == 255 && p[0] == p[1] && p[1] == p[2]));
        assert!(tile_pixels(&[], 3, 2, 1, 0, 0).is_none());
    }
}
