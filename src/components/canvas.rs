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

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(&mut self, path: I, style: &S) -> Drawn {
        self.inner.draw_path(path, style)
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
