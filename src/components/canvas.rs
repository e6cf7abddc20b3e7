//! The charts' plotters backend: `plotters_canvas::CanvasBackend`, measuring text on the canvas.
//!
//! plotters sizes each axis label before it draws it, and on the web its font code does so by
//! adding a `<span>` to the page and reading its `offsetHeight` — a forced layout of the whole
//! page per label, about 33 a second while a lab trains (profiled in the RNN lab). The canvas's
//! own `measureText` gives the same box without touching the page. Everything else is
//! `CanvasBackend`'s.

use plotters::prelude::DrawingBackend;
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind};
use plotters_canvas::CanvasBackend;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

pub struct Canvas {
    inner: CanvasBackend,
    context: CanvasRenderingContext2d,
}

impl Canvas {
    /// A backend drawing on `canvas` (None: it has no 2D context).
    pub fn on(canvas: &HtmlCanvasElement) -> Option<Canvas> {
        let context = canvas.get_context("2d").ok()??.dyn_into().ok()?;
        Some(Canvas { inner: CanvasBackend::with_canvas_object(canvas.clone())?, context })
    }
}

/// Lines of this many points or more are stroked as hairlines when wide.
const HAIRLINES_FROM: usize = 24;

/// Where the hairlines that draw a line `width` pixels wide go, relative to the line: none for
/// a width of 1 (a hairline already) or over 3 (the copies would part). Chromium's software canvas
/// strokes a 1-pixel line on a fast path, but outlines and fills a wider one: the fit lab's eight
/// 240-point unit curves took 8.8 ms to rasterise at width 2 and 0.8 ms at width 1 (measured in
/// headless Chromium on the 2-core VM), and that raster runs on the page's thread. Four hairlines
/// on the corners of a small square keep the width whichever way the line goes.
fn hairline_offsets(width: u32) -> Vec<(f64, f64)> {
    if !(2..=3).contains(&width) {
        return Vec::new();
    }
    let s = 0.7 * (width - 1) as f64;
    vec![(0.0, 0.0), (s, 0.0), (0.0, s), (s, s)]
}

/// `plotters_canvas` does not export its error type by name.
type CanvasError = <CanvasBackend as DrawingBackend>::ErrorType;
type Drawn = Result<(), DrawingErrorKind<CanvasError>>;

impl DrawingBackend for Canvas {
    type ErrorType = CanvasError;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Drawn {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Drawn {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Drawn {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, style: &S) -> Drawn {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(&mut self, upper_left: BackendCoord, bottom_right: BackendCoord, style: &S, fill: bool) -> Drawn {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    /// A long opaque line wider than a pixel is stroked as a few hairlines side by side (see
    /// [`hairline_offsets`]); anything else as `CanvasBackend` strokes it.
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(&mut self, path: I, style: &S) -> Drawn {
        let points: Vec<BackendCoord> = path.into_iter().collect();
        let color = style.color();
        let offsets = hairline_offsets(style.stroke_width());
        if points.len() < HAIRLINES_FROM || offsets.is_empty() || color.alpha < 1.0 {
            return self.inner.draw_path(points, style);
        }
        let (r, g, b) = color.rgb;
        self.context.set_stroke_style_str(&format!("rgb({r},{g},{b})"));
        self.context.set_line_width(1.0);
        for (dx, dy) in offsets {
            self.context.begin_path();
            for (i, &(x, y)) in points.iter().enumerate() {
                let (x, y) = (f64::from(x) + dx, f64::from(y) + dy);
                if i == 0 {
                    self.context.move_to(x, y);
                } else {
                    self.context.line_to(x, y);
                }
            }
            self.context.stroke();
        }
        Ok(())
    }

    fn draw_circle<S: BackendStyle>(&mut self, center: BackendCoord, radius: u32, style: &S, fill: bool) -> Drawn {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(&mut self, vert: I, style: &S) -> Drawn {
        self.inner.fill_polygon(vert, style)
    }

    fn draw_text<S: BackendTextStyle>(&mut self, text: &str, style: &S, pos: BackendCoord) -> Drawn {
        self.inner.draw_text(text, style, pos)
    }

    /// The box `draw_text` fills: the width `measureText` gives, the height of the font's line
    /// box (its ascent + descent), as the span plotters would add measures them.
    fn estimate_text_size<S: BackendTextStyle>(&self, text: &str, style: &S) -> Result<(u32, u32), DrawingErrorKind<CanvasError>> {
        self.context.set_font(&format!("{} {}px {}", style.style().as_str(), style.size(), style.family().as_str()));
        let Ok(m) = self.context.measure_text(text) else { return Ok((0, 0)) };
        let height = m.font_bounding_box_ascent() + m.font_bounding_box_descent();
        // A font without a bounding box (never seen in Chromium): the CSS "normal" line height.
        let height = if height.is_finite() && height > 0.0 { height } else { style.size() * 1.2 };
        Ok((m.width().ceil().max(0.0) as u32, height.ceil().max(0.0) as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::hairline_offsets;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// The spread of the hairlines across a line going in direction `angle`: how much wider than
    /// one hairline the drawn line is.
    fn spread(offsets: &[(f64, f64)], angle: f64) -> f64 {
        let (nx, ny) = (-angle.sin(), angle.cos());
        let across: Vec<f64> = offsets.iter().map(|&(dx, dy)| dx * nx + dy * ny).collect();
        across.iter().copied().fold(f64::MIN, f64::max) - across.iter().copied().fold(f64::MAX, f64::min)
    }

    #[wasm_bindgen_test]
    fn hairlines_keep_a_wide_line_about_as_wide_in_every_direction() {
        assert!(hairline_offsets(0).is_empty() && hairline_offsets(1).is_empty(), "a hairline is drawn as it is");
        assert!(hairline_offsets(4).is_empty(), "a wide line is not drawn hollow");
        for width in [2u32, 3] {
            let offsets = hairline_offsets(width);
            for step in 0..16 {
                let angle = std::f64::consts::PI * step as f64 / 16.0;
                let drawn = 1.0 + spread(&offsets, angle);
                // At least two-thirds of the width, and never wider, whichever way the line goes.
                assert!(drawn >= 1.0 + 0.66 * (width - 1) as f64 && drawn <= width as f64 + 1e-9, "width {width}, angle {angle:.2}: {drawn:.2} px");
            }
        }
    }
}
