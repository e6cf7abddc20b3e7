//! Lab 2: a CNN on real MNIST (or Fashion-MNIST). The race of the loop convolution against
//! im2col, the filters and feature maps, accuracy curves, a confusion matrix, the most
//! confidently wrong test images, per-layer histograms and draw-a-digit.

use super::cnn_draw as draw;
use super::cnn_editor::LayerEditor;
use super::digit_pad::DigitPad;
use crate::client::LabState;
use crate::components::chart::{self, ChartSpec, Series, BLUE, GREY, ORANGE};
use crate::components::controls::{link_value, options, Check, Field, Select};
use crate::components::layers::LayerCard;
use crate::components::stats_bar::StatsBar;
use crate::components::Toolbar;
use crate::format::short;
use engine::data::images::ImageSet;
use engine::lab::cnn::{CnnCommand, CnnConfig, CnnModel, CnnView};
use engine::lab::{LabCommand, LabConfig, View};
use engine::ops::ActivationKind;
use engine::optim::{OptimizerKind, Schedule};
use leptos::html;
use leptos::prelude::*;

fn config(state: &LabState) -> CnnConfig {
    match state.config.get() {
        LabConfig::Cnn(c) => c,
        _ => CnnConfig::default(),
    }
}

fn with_view<R>(state: &LabState, f: impl FnOnce(&CnnView) -> R) -> Option<R> {
    state.snapshot.with(|s| match s.as_ref().map(|s| &s.view) {
        Some(View::Cnn(v)) => Some(f(v)),
        _ => None,
    })
}

/// "conv 5×5 → 6, pad 2 · relu · max pool 2 · … · 61,706 parameters"
fn architecture(c: &CnnConfig) -> String {
    let mut parts = Vec::new();
    let sides = c.sides().unwrap_or_default();
    for (i, (f, k, p, pool)) in c.convs().into_iter().enumerate() {
        let (conv, pooled) = sides.get(i).copied().unwrap_or((0, 0));
        let pad = if p > 0 { format!(" pad {p}") } else { String::new() };
        parts.push(format!("conv {k}×{k}×{f}{pad} → {conv}×{conv}×{f}"));
        if pool > 1 {
            parts.push(format!("{} pool {pool} → {pooled}×{pooled}", link_value(&c.pooling)));
        }
    }
    for u in &c.dense {
        parts.push(format!("dense {u}"));
    }
    parts.push("dense 10".into());
    let n = c.param_count().to_string();
    let grouped: String =
        n.chars().rev().collect::<Vec<_>>().chunks(3).map(|g| g.iter().collect::<String>()).collect::<Vec<_>>().join(",").chars().rev().collect();
    format!("{} · {grouped} parameters", parts.join(" · "))
}

#[component]
fn LoadingBar(state: LabState) -> impl IntoView {
    view! {
        <Show when=move || state.loading.with(|l| l.is_some())>
            <div class="loading" id="data-progress">
                {move || state.loading.get().map(|(what, loaded, total)| {
                    let pct = if total > 0.0 { (loaded / total * 100.0).min(100.0) } else { 0.0 };
                    view! {
                        <span>{format!("Loading {what}: {:.1} of {:.1} MB", loaded / 1e6, total / 1e6)}</span>
                        <progress max="100" value=pct></progress>
                    }
                })}
            </div>
        </Show>
    }
}

#[component]
fn RacePanel(state: LabState) -> impl IntoView {
    let race = move || with_view(&state, |v| v.race.clone()).flatten();
    let body = move || {
        match race() {
        None => view! { <p class="muted small" id="race-empty">"Press Play (or “Race now”): the current mini-batch goes through both convolutions, forward and backward, and both are timed."</p> }.into_any(),
        Some(r) => {
            let slow = r.naive_ms.max(1e-9);
            let speedup = r.naive_ms / r.im2col_ms.max(1e-3);
            view! {
                <div class="race-bars">
                    <div class="race-row"><span class="race-name">"naive loops"</span>
                        <span class="race-bar naive"><span style:width="100%"></span></span>
                        <span class="race-ms" id="race-naive-ms" data-ms=r.naive_ms.to_string()>{format!("{:.1} ms", r.naive_ms)}</span></div>
                    <div class="race-row"><span class="race-name">"im2col + GEMM"</span>
                        <span class="race-bar fast"><span style:width=format!("{:.2}%", (r.im2col_ms / slow * 100.0).clamp(0.5, 100.0))></span></span>
                        <span class="race-ms" id="race-im2col-ms" data-ms=r.im2col_ms.to_string()>{format!("{:.1} ms", r.im2col_ms)}</span></div>
                </div>
                <p class="race-summary">
                    <strong id="race-speedup">{format!("{speedup:.1}× faster")}</strong>
                    " · largest |difference| of the outputs "<span id="race-diff" data-diff=r.max_diff.to_string()>{short(r.max_diff)}</span>
                    {format!(" · batch of {} at step {}", r.batch, r.step)}
                </p>
            }
            .into_any()
        }
    }
    };
    view! {
        <div class="card race" id="race">
            <h4 class="card-title">"The race: loops vs im2col (the same mini-batch, every conv layer, forward + backward)"</h4>
            {body}
            <div class="pad-row">
                <button id="race-now" on:click=move |_| state.command(LabCommand::Cnn(CnnCommand::Race))>"Race now"</button>
                <span class="muted small">"Same maths: the loops visit every (output, kernel) pair one at a time; im2col unfolds the patches into a matrix and does one matrix product, which streams through memory and uses SIMD."</span>
            </div>
        </div>
    }
}

#[component]
fn Confusion(state: LabState) -> impl IntoView {
    // Changes only when a test evaluation completes: re-render the table then, not per snapshot.
    let data = Memo::new(move |_| with_view(&state, |v| (v.confusion.clone(), v.classes.clone())).unwrap_or_default());
    let table = move || {
        data.with(|(confusion, classes)| {
            if confusion.len() != 100 {
                return view! { <p class="muted small">"Appears after the first test evaluation."</p> }.into_any();
            }
            let max = confusion.iter().enumerate().filter(|(i, _)| i / 10 != i % 10).map(|(_, &n)| n).max().unwrap_or(1).max(1);
            let head = classes.iter().map(|c| view! { <th>{c.clone()}</th> }).collect_view();
            let rows = (0..10)
                .map(|t| {
                    let cells = (0..10)
                        .map(|p| {
                            let n = confusion[t * 10 + p];
                            let style =
                                if t == p { String::new() } else { format!("background: rgba(220, 38, 38, {:.2})", (n as f32 / max as f32).sqrt() * 0.8) };
                            view! { <td class:diag=t == p style=style>{n}</td> }
                        })
                        .collect_view();
                    view! { <tr><th>{classes[t].clone()}</th>{cells}</tr> }
                })
                .collect_view();
            view! {
                <table class="confusion cnn-confusion" id="confusion">
                    <caption>"rows: true class · columns: predicted (all 10,000 test images)"</caption>
                    <tr><th></th>{head}</tr>
                    {rows}
                </table>
            }
            .into_any()
        })
    };
    view! { <div class="card"><h4 class="card-title">"Confusion matrix"</h4>{table}</div> }
}

#[component]
pub fn CnnLab(state: LabState) -> impl IntoView {
    let loss_canvas = NodeRef::<html::Canvas>::new();
    let acc_canvas = NodeRef::<html::Canvas>::new();
    let probe_canvas = NodeRef::<html::Canvas>::new();
    let wrong_canvas = NodeRef::<html::Canvas>::new();
    let filter_box = NodeRef::<html::Div>::new();
    let map_box = NodeRef::<html::Div>::new();

    Effect::new(move |_| {
        let Some(canvas) = loss_canvas.get() else {
            return;
        };
        let batch: Vec<(f64, f64)> = state.records.with(|r| r.iter().map(|p| (p.step as f64, p.loss as f64)).collect());
        let test: Vec<(f64, f64)> = with_view(&state, |v| v.history.iter().map(|h| (h.step as f64, h.test_loss as f64)).collect()).unwrap_or_default();
        let last = batch.last().map(|p| p.0).unwrap_or(0.0).max(10.0);
        chart::draw(
            &canvas,
            &ChartSpec {
                title: "Loss (log scale)",
                x_label: "training step",
                y_label: "cross-entropy",
                log_y: true,
                x_range: Some((0.0, last)),
                y_range: None,
                band: None,
            },
            &[Series::line("mini-batch", GREY, batch, 1), Series::line("test (10,000 images)", ORANGE, test, 2)],
        );
    });
    Effect::new(move |_| {
        let Some(canvas) = acc_canvas.get() else {
            return;
        };
        let Some((train, test, end)) = with_view(&state, |v| {
            let pct = |a: f32| a as f64 * 100.0;
            (
                v.history.iter().filter(|h| h.train_accuracy.is_finite()).map(|h| (h.epoch as f64, pct(h.train_accuracy))).collect::<Vec<_>>(),
                v.history.iter().map(|h| (h.epoch as f64, pct(h.test_accuracy))).collect::<Vec<_>>(),
                v.history.last().map(|h| h.epoch as f64).unwrap_or(0.0),
            )
        }) else {
            return;
        };
        let lo = train.iter().chain(&test).map(|p| p.1).fold(100.0f64, f64::min).clamp(0.0, 90.0);
        chart::draw(
            &canvas,
            &ChartSpec {
                title: "Accuracy",
                x_label: "epoch",
                y_label: "accuracy (%)",
                log_y: false,
                x_range: Some((0.0, end.max(0.1))),
                y_range: Some(((lo - 1.0).floor().max(0.0), 100.0)),
                band: None,
            },
            &[Series::line("train (mini-batches)", BLUE, train, 2), Series::line("test", ORANGE, test, 2)],
        );
    });
    // Filters and feature maps: a canvas per layer, rebuilt when the layer count changes.
    Effect::new(move |_| {
        let Some(host) = filter_box.get() else { return };
        with_view(&state, |v| {
            let canvases = ensure_canvases(&host, v.filters.len(), "filters");
            for (bank, canvas) in v.filters.iter().zip(canvases) {
                draw::draw_filters(&canvas, bank);
            }
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
    Effect::new(move |_| {
        let Some(host) = map_box.get() else { return };
        with_view(&state, |v| {
            let canvases = ensure_canvases(&host, v.probe.maps.len(), "maps");
            for (maps, canvas) in v.probe.maps.iter().zip(canvases) {
                draw::draw_maps(&canvas, maps);
            }
            label_rows(&host, v.probe.maps.iter().map(|m| format!("{} — {} maps of {}×{}", m.name, m.channels, m.side, m.side)).collect());
            if let Some(c) = probe_canvas.get_untracked() {
                draw::draw_image(&c, &v.probe.pixels, 4);
            }
        });
    });
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
    let eval_progress = move || with_view(&state, |v| v.eval_progress).unwrap_or(0.0);
    let new_seed = move |_| state.set_value("seed", &((js_sys::Math::random() * 1e9) as u64).to_string());

    view! {
        <div class="lab">
            <aside class="controls">
                <section>
                    <h3>"Data"</h3>
                    <Select state key="data" label="dataset" options=options(&ImageSet::ALL, ImageSet::label)/>
                    <Check state key="norm" label="standardise pixels" help="(p − mean) / std of the training images, else p in [0, 1]"/>
                    <div class="seed-row">
                        <Field state key="seed" label="seed" step="1"/>
                        <button id="regenerate" title="new initial weights and order from a new seed" on:click=new_seed>"new"</button>
                    </div>
                </section>
                <section>
                    <h3>"Model"</h3>
                    <Select state key="model" label="start from" options=options(&CnnModel::ALL, CnnModel::label) help="sets every layer and the training recipe"/>
                    <LayerEditor state/>
                    <Select state key="pooling" label="pooling" options=vec![("max".into(), "max"), ("avg".into(), "average")]/>
                    <details class="lists">
                        <summary class="muted small">"edit as lists (the link keys)"</summary>
                        <Field state key="filters" kind="text" label="filters per conv" help="one number per conv layer, e.g. 6,16 (1–4 layers, 1–64 filters)"/>
                        <Field state key="kernel" kind="text" label="kernel sizes" help="per conv layer, e.g. 5,5"/>
                        <Field state key="pad" kind="text" label="padding" help="per conv layer, e.g. 2,0"/>
                        <Field state key="pool" kind="text" label="pool windows" help="per conv layer; 0 or 1 = no pooling"/>
                        <Field state key="dense" kind="text" label="hidden dense" help="widths of the dense layers before the output, e.g. 120,84 (empty: none)"/>
                    </details>
                    <Select state key="act" label="activation" options=options(&ActivationKind::ALL, ActivationKind::label)/>
                    <p class="muted small arch" id="architecture">{move || architecture(&config(&state))}</p>
                </section>
                <section>
                    <h3>"Training"</h3>
                    <Select state key="opt" label="optimizer" options=options(&OptimizerKind::ALL, OptimizerKind::label)/>
                    <Field state key="lr" label="learning rate" step="0.0005"/>
                    <Select state key="sched" label="schedule" options=options(&Schedule::ALL, Schedule::label)/>
                    <Field state key="period" label="period T (steps)" step="100"/>
                    <Field state key="bs" label="batch size" step="1"/>
                    <Field state key="l2" label="L2" step="0.0001"/>
                    <Select state key="conv" label="convolution" options=vec![("im2col".into(), "im2col + GEMM"), ("naive".into(), "naive loops")] help="which implementation trains the model"/>
                    <Check state key="race" label="race both every ~1.5 s"/>
                </section>
                <section>
                    <h3>"Evaluate & stop"</h3>
                    <Field state key="eval" label="test every (steps)" step="100" help="all 10,000 test images are evaluated this often"/>
                    <Field state key="epochs" label="stop after epochs" step="1" help="0 = off"/>
                    <Field state key="stop" label="stop at step" step="1" help="0 = off"/>
                </section>
            </aside>
            <section class="workspace">
                <LoadingBar state/>
                <Toolbar state/>
                <StatsBar state/>
                <Show when=move || { eval_progress() > 0.0 }>
                    <p class="muted small" id="eval-progress">{move || format!("evaluating the test set… {:.0}%", eval_progress() * 100.0)}</p>
                </Show>
                <RacePanel state/>
                <div class="play-grid">
                    <div class="card"><canvas id="loss-chart" node_ref=loss_canvas width="560" height="280"></canvas></div>
                    <div class="card"><canvas id="accuracy-chart" node_ref=acc_canvas width="560" height="280"></canvas></div>
                </div>
                <div class="play-grid">
                    <div class="card">
                        <h4 class="card-title">"Draw a digit"</h4>
                        <DigitPad state/>
                    </div>
                    <div class="card">
                        <h4 class="card-title">"Filters (blue −, red +)"</h4>
                        <div class="tile-stack" id="filters" node_ref=filter_box></div>
                    </div>
                </div>
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
                <div class="play-grid">
                    <Confusion state/>
                    <div class="card">
                        <h4 class="card-title">"Most confidently wrong test images (true → predicted)"</h4>
                        <canvas id="wrong-images" node_ref=wrong_canvas width="400" height="200" on:click=on_wrong_click></canvas>
                    </div>
                </div>
                <h3 class="section-title">"Layers: weights, activations (last mini-batch) and gradients"</h3>
                <div class="layers">{layers}</div>
            </section>
        </div>
    }
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
