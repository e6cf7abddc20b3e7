//! The CNN lab's live panels: accuracy curves, filters, the feature maps of one test image, the
//! most confidently wrong test images, and the layer cards.

use super::cnn::{config, with_view};
use super::cnn_draw as draw;
use crate::client::LabState;
use crate::components::chart::{BLUE, ORANGE};
use crate::components::controls::Field;
use crate::components::layers::LayerCard;
use crate::components::loss_chart::Measured;
use crate::components::LossChart;
use leptos::html;
use leptos::prelude::*;

/// Accuracy over the steps (the shared step chart): each recorded mini-batch's share right from
/// the first step, and at each evaluation the training batches' mean since the previous one and
/// the test set's.
#[component]
pub fn AccuracyChart(state: LabState) -> impl IntoView {
    let measured = Signal::derive(move || {
        with_view(&state, |v| {
            let pick = |f: fn(&engine::lab::cnn::AccuracyPoint) -> f32| {
                v.history.iter().map(|h| (h.step as f64, f(h) as f64 * 100.0)).filter(|p| p.1.is_finite()).collect::<Vec<_>>()
            };
            vec![Measured::curve("train (mean since last)", BLUE, pick(|h| h.train_accuracy)), Measured::curve("test", ORANGE, pick(|h| h.test_accuracy))]
        })
        .unwrap_or_default()
    });
    view! { <LossChart state title="Accuracy" y_label="accuracy (%)" evaluations=measured id="accuracy-chart" percent=true/> }
}

/// Each conv layer's filters as small images: a canvas per layer, rebuilt when the count changes.
#[component]
pub fn FiltersCard(state: LabState) -> impl IntoView {
    let filter_box = NodeRef::<html::Div>::new();
    Effect::new(move |_| {
        let Some(host) = filter_box.get() else { return };
        with_view(&state, |v| {
            let canvases = ensure_canvases(&host, v.filters.len(), "filters");
            // Drawn in an upcoming frame, paced with the charts (`LabState::draw_soon`).
            let banks = v.filters.clone();
            state.draw_soon("filters", move || {
                for (bank, canvas) in banks.iter().zip(canvases) {
                    draw::draw_filters(&canvas, bank);
                }
            });
            label_rows(
                &host,
                v.filters
                    .iter()
                    .map(|b| {
                        format!(
                            "{} — {} filters{}",
                            b.name,
                            b.filters,
                            if b.channels > 1 { format!(" (a row per input channel: {})", b.channels) } else { String::new() }
                        )
                    })
                    .collect(),
            );
        });
    });
    view! {
        <div class="card">
            <h4 class="card-title">"Filters (blue −, red +)"</h4>
            <div class="tile-stack" id="filters" node_ref=filter_box></div>
        </div>
    }
}

/// One test image through the network: its feature maps after each conv / pooling layer.
#[component]
pub fn ProbeCard(state: LabState) -> impl IntoView {
    let probe_canvas = NodeRef::<html::Canvas>::new();
    let map_box = NodeRef::<html::Div>::new();
    Effect::new(move |_| {
        let Some(host) = map_box.get() else { return };
        with_view(&state, |v| {
            let canvases = ensure_canvases(&host, v.probe.maps.len(), "maps");
            label_rows(&host, v.probe.maps.iter().map(|m| format!("{} — {} maps of {}×{}", m.name, m.channels, m.side, m.side)).collect());
            let (all_maps, pixels, probe) = (v.probe.maps.clone(), v.probe.pixels.clone(), probe_canvas.get_untracked());
            state.draw_soon("feature-maps", move || {
                for (maps, canvas) in all_maps.iter().zip(canvases) {
                    draw::draw_maps(&canvas, maps);
                }
                if let Some(c) = probe {
                    draw::draw_image(&c, &pixels, 4);
                }
            });
        });
    });
    let probe_text = move || {
        with_view(&state, |v| {
            let p = &v.probe;
            let best = p.probabilities.iter().enumerate().fold((0, -1.0f32), |b, (i, &q)| if q > b.1 { (i, q) } else { b });
            let name = |c: usize| v.classes.get(c).cloned().unwrap_or_default();
            format!("test image #{}: true class {}, predicted {} ({:.1}%)", p.index, name(p.label), name(best.0), best.1 * 100.0)
        })
    };
    let next_probe = move |delta: i64| {
        let c = config(&state);
        let next = (c.probe as i64 + delta).rem_euclid(10_000);
        state.set_value("probe", &next.to_string());
    };
    view! {
                <div class="card">
                    <h4 class="card-title">"Feature maps of one test image after each conv / pooling layer"</h4>
                    <div class="probe-row">
                        <canvas id="probe-image" class="pixelated" node_ref=probe_canvas width="112" height="112"></canvas>
                        <div>
                            <p id="probe-text">{probe_text}</p>
                            <div class="pad-row">
                                <button id="probe-prev" on:click=move |_| next_probe(-1)>"← previous"</button>
                                <button id="probe-next" on:click=move |_| next_probe(1)>"next →"</button>
                                <Field state key="probe" label="image #" step="1"/>
                            </div>
                            <p class="muted small">"Click a wrong image below to look inside it."</p>
                        </div>
                    </div>
                    <div class="tile-stack" id="feature-maps" node_ref=map_box></div>
                </div>
    }
}

/// The most confidently wrong test images; a click looks inside one.
#[component]
pub fn WrongCard(state: LabState) -> impl IntoView {
    let wrong_canvas = NodeRef::<html::Canvas>::new();
    let wrong = Memo::new(move |_| with_view(&state, |v| (v.wrong.clone(), v.classes.clone())).unwrap_or_default());
    Effect::new(move |_| {
        let Some(canvas) = wrong_canvas.get() else {
            return;
        };
        wrong.with(|(images, classes)| draw::draw_wrong(&canvas, images, classes));
    });
    let on_wrong_click = move |ev: web_sys::MouseEvent| {
        let Some(canvas) = wrong_canvas.get() else {
            return;
        };
        let r = canvas.get_bounding_client_rect();
        let (sx, sy) = (canvas.width() as f64 / r.width().max(1.0), canvas.height() as f64 / r.height().max(1.0));
        let (px, py) = ((ev.client_x() as f64 - r.left()) * sx, (ev.client_y() as f64 - r.top()) * sy);
        if let Some(index) = wrong.with_untracked(|(w, _)| draw::wrong_at(w.len(), px, py).map(|t| w[t].index)) {
            state.set_value("probe", &index.to_string());
        }
    };
    view! {
                    <div class="card">
                        <h4 class="card-title">"Most confidently wrong test images (true → predicted)"</h4>
                        <canvas id="wrong-images" node_ref=wrong_canvas width="400" height="200" on:click=on_wrong_click></canvas>
                    </div>
    }
}

/// Per-layer histograms of weights, activations (last mini-batch) and gradients.
#[component]
pub fn CnnLayers(state: LabState) -> impl IntoView {
    let layers = move || {
        state.snapshot.with(|s| {
            s.as_ref().map(|s| {
                s.layers
                    .iter()
                    .cloned()
                    .enumerate()
                    .map(|(i, l)| view! { <LayerCard index=i layer=l activations="activations (latest batch)"/> })
                    .collect_view()
            })
        })
    };
    view! { <div class="layers">{layers}</div> }
}

/// Makes `host` hold exactly `n` (caption, canvas) pairs and returns the canvases.
fn ensure_canvases(host: &web_sys::HtmlDivElement, n: usize, class: &str) -> Vec<web_sys::HtmlCanvasElement> {
    use wasm_bindgen::JsCast;
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return Vec::new();
    };
    let existing = host.query_selector_all("canvas").map(|l| l.length() as usize).unwrap_or(0);
    if existing != n {
        host.set_inner_html("");
        for i in 0..n {
            if let (Ok(caption), Ok(canvas)) = (doc.create_element("p"), doc.create_element("canvas")) {
                caption.set_class_name("muted small tile-caption");
                canvas.set_class_name(&format!("pixelated {class}"));
                canvas.set_id(&format!("{class}-{i}"));
                let _ = host.append_child(&caption);
                let _ = host.append_child(&canvas);
            }
        }
    }
    let list = host.query_selector_all("canvas").ok();
    (0..n).filter_map(|i| list.as_ref()?.item(i as u32)?.dyn_into().ok()).collect()
}

fn label_rows(host: &web_sys::HtmlDivElement, labels: Vec<String>) {
    if let Ok(list) = host.query_selector_all("p.tile-caption") {
        for (i, text) in labels.into_iter().enumerate() {
            if let Some(node) = list.item(i as u32) {
                node.set_text_content(Some(&text));
            }
        }
    }
}
