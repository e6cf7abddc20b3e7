//! Draw a digit: a canvas for mouse, pen and touch (pointer events). The drawing is scaled and
//! centred like MNIST's digits (engine: `center_drawing`) and classified by the worker with the
//! current weights; the 10 probabilities are shown as bars.

use super::cnn_draw;
use crate::client::LabState;
use engine::lab::cnn::{CnnCommand, CnnReply, CnnView};
use engine::lab::{LabCommand, LabReply, View};
use leptos::html;
use leptos::prelude::*;

const PAD: u32 = 280;
/// While drawing, classify at most this often.
const LIVE_MS: f64 = 80.0;

#[component]
pub fn DigitPad(state: LabState) -> impl IntoView {
    let pad = NodeRef::<html::Canvas>::new();
    let preview = NodeRef::<html::Canvas>::new();
    let drawing = RwSignal::new(false);
    let last = StoredValue::new(None::<(f64, f64)>);
    let last_sent = StoredValue::new(0.0f64);
    let has_ink = RwSignal::new(false);

    let clear = move || {
        let Some(canvas) = pad.get_untracked() else {
            return;
        };
        if let Some(ctx) = cnn_draw::readable_context(&canvas) {
            ctx.set_fill_style_str("#000");
            ctx.fill_rect(0.0, 0.0, PAD as f64, PAD as f64);
        }
        has_ink.set(false);
        state.reply.set(None);
        if let Some(p) = preview.get_untracked() {
            cnn_draw::draw_image(&p, &[0u8; 784], 4);
        }
    };
    Effect::new(move |_| {
        if pad.get().is_some() {
            clear();
        }
    });
    // The drawing → 28×28 like MNIST → the worker.
    let classify = move || {
        let Some(canvas) = pad.get_untracked() else {
            return;
        };
        let Some(ctx) = cnn_draw::readable_context(&canvas) else {
            return;
        };
        let Ok(data) = ctx.get_image_data(0.0, 0.0, PAD as f64, PAD as f64) else {
            return;
        };
        let ink: Vec<f32> = data.data().0.chunks(4).map(|p| p[0] as f32 / 255.0).collect();
        let pixels = engine::data::images::center_drawing(&ink, PAD as usize, PAD as usize);
        if let Some(p) = preview.get_untracked() {
            let bytes: Vec<u8> = pixels.iter().map(|&v| (v * 255.0) as u8).collect();
            cnn_draw::draw_image(&p, &bytes, 4);
        }
        last_sent.set_value(js_sys::Date::now());
        state.command(LabCommand::Cnn(CnnCommand::Classify { pixels }));
    };
    let point = move |ev: &web_sys::PointerEvent| {
        let canvas = pad.get_untracked()?;
        let r = canvas.get_bounding_client_rect();
        let s = PAD as f64 / r.width().max(1.0);
        Some(((ev.client_x() as f64 - r.left()) * s, (ev.client_y() as f64 - r.top()) * s))
    };
    let stroke = move |to: (f64, f64)| {
        let Some(canvas) = pad.get_untracked() else {
            return;
        };
        let Some(ctx) = cnn_draw::readable_context(&canvas) else {
            return;
        };
        let from = last.get_value().unwrap_or(to);
        ctx.set_stroke_style_str("#fff");
        ctx.set_line_width(20.0);
        ctx.set_line_cap("round");
        ctx.set_line_join("round");
        ctx.begin_path();
        ctx.move_to(from.0, from.1);
        ctx.line_to(to.0 + 0.01, to.1);
        ctx.stroke();
        last.set_value(Some(to));
        has_ink.set(true);
    };
    let on_down = move |ev: web_sys::PointerEvent| {
        ev.prevent_default();
        if let Some(c) = pad.get_untracked() {
            let _ = c.set_pointer_capture(ev.pointer_id());
        }
        drawing.set(true);
        last.set_value(None);
        if let Some(p) = point(&ev) {
            stroke(p);
        }
    };
    let on_move = move |ev: web_sys::PointerEvent| {
        if !drawing.get_untracked() {
            return;
        }
        ev.prevent_default();
        if let Some(p) = point(&ev) {
            stroke(p);
        }
        if js_sys::Date::now() - last_sent.get_value() >= LIVE_MS {
            classify();
        }
    };
    let on_up = move |_: web_sys::PointerEvent| {
        if drawing.get_untracked() {
            drawing.set(false);
            last.set_value(None);
            classify();
        }
    };
    // New weights: classify the same drawing again.
    Effect::new(move |_| {
        state.snapshot.track();
        if has_ink.get_untracked() && !drawing.get_untracked() && js_sys::Date::now() - last_sent.get_value() >= 500.0 {
            classify();
        }
    });

    let classes = move || {
        state.snapshot.with(|s| match s.as_ref().map(|s| &s.view) {
            Some(View::Cnn(v)) => v.classes.clone(),
            _ => CnnView::default().classes,
        })
    };
    let bars = move || {
        let probs = match state.reply.get() {
            Some(LabReply::Cnn(CnnReply::Classified { probabilities })) => probabilities,
            _ => Vec::new(),
        };
        let names = classes();
        let best = probs.iter().enumerate().fold((usize::MAX, -1.0f32), |b, (i, &p)| if p > b.1 { (i, p) } else { b }).0;
        (0..10)
            .map(|i| {
                let p = probs.get(i).copied();
                let name = names.get(i).cloned().unwrap_or_else(|| i.to_string());
                view! {
                    <div class="prob-row" class:best=i == best>
                        <span class="prob-name">{name}</span>
                        <span class="prob-bar"><span style:width=format!("{:.1}%", p.unwrap_or(0.0) * 100.0)></span></span>
                        <span class="prob-value" data-p=p.map(|p| p.to_string()).unwrap_or_default()>{p.map(|p| format!("{:.1}%", p * 100.0)).unwrap_or_else(|| "–".into())}</span>
                    </div>
                }
            })
            .collect_view()
    };
    view! {
        <div class="digit-pad">
            <div class="pad-col">
                <canvas id="digit-pad" class="pad" node_ref=pad width=PAD height=PAD
                    on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up on:pointercancel=on_up></canvas>
                <div class="pad-row">
                    <button id="digit-clear" on:click=move |_| clear()>"Clear"</button>
                    <span class="muted small">"as the network sees it:"</span>
                    <canvas id="digit-preview" class="pixelated" node_ref=preview width="112" height="112"></canvas>
                </div>
            </div>
            <div class="probs" id="digit-probs">
                <p class="muted small">{move || if has_ink.get() { "Probabilities from the current weights:" } else { "Draw with the mouse, a pen or a finger." }}</p>
                {bars}
            </div>
        </div>
    }
}
