//! The RNN lab's panels: loss and accuracy curves (with the naive-Bayes baseline and the best
//! epoch), the confusion matrix with per-class recall, and backpropagation through time made
//! visible for the typed name.

use super::rnn::{config, with_view};
use crate::client::LabState;
use crate::components::chart::{self, ChartSpec, Series, BLUE, GREEN, GREY, ORANGE};
use crate::components::loss_chart::Measured;
use crate::components::LossChart;
use crate::format::short;
use leptos::html;
use leptos::prelude::*;

/// The mini-batch loss of every recorded step, and the train (mean of the mini-batches since
/// the previous evaluation), validation and test losses at each evaluation, over the steps (the
/// shared loss chart: a log step axis shows the first steps, which evaluations every 200 steps
/// would leave empty).
#[component]
pub fn RnnLossChart(state: LabState) -> impl IntoView {
    let measured = Signal::derive(move || {
        with_view(&state, |v| {
            let pick = |f: fn(&engine::lab::rnn::EvalPoint) -> f32| v.history.iter().map(|h| (h.step as f64, f(h) as f64)).collect::<Vec<_>>();
            vec![
                Measured::curve("train (mean since last)", BLUE, pick(|h| h.train_loss)),
                Measured::curve("validation", GREEN, pick(|h| h.val_loss)),
                Measured::curve("test", ORANGE, pick(|h| h.test_loss)),
            ]
        })
        .unwrap_or_default()
    });
    view! { <LossChart state title="Loss" y_label="cross-entropy (nats)" evaluations=measured id="rnn-loss-chart" log_y=false/> }
}

/// Accuracy over the steps (the shared step chart): each recorded mini-batch's share right from
/// the first step; at each evaluation the training batches' mean since the previous one,
/// validation, test and balanced test; the naive-Bayes baseline flat and the best epoch as a dot.
#[component]
pub fn AccuracyChart(state: LabState) -> impl IntoView {
    let measured = Signal::derive(move || {
        with_view(&state, |v| {
            let pct = |a: f32| a as f64 * 100.0;
            let pick = |f: fn(&engine::lab::rnn::EvalPoint) -> f32| {
                v.history.iter().map(|h| (h.step as f64, pct(f(h)))).filter(|p| p.1.is_finite()).collect::<Vec<_>>()
            };
            let mut m = vec![
                Measured::curve("train (mean since last)", BLUE, pick(|h| h.train_accuracy)),
                Measured::curve("validation", GREEN, pick(|h| h.val_accuracy)),
                Measured::curve("test", ORANGE, pick(|h| h.test_accuracy)),
                Measured::curve("test, balanced", chart::palette(3), pick(|h| h.test_balanced)),
                Measured::baseline("naive Bayes (test)", GREY, pct(v.baseline[0])),
            ];
            if let Some(b) = &v.best {
                m.push(Measured::dot("best epoch (validation)", chart::palette(4), (b.step as f64, pct(b.val_accuracy))));
            }
            m
        })
        .unwrap_or_default()
    });
    view! { <LossChart state title="Accuracy" y_label="accuracy (%)" evaluations=measured id="rnn-accuracy-chart" percent=true/> }
}

/// The confusion matrix on the test names, with each class's recall.
#[component]
pub fn Confusion(state: LabState) -> impl IntoView {
    let data = Memo::new(move |_| with_view(&state, |v| (v.confusion.clone(), v.classes.clone(), v.recall.clone(), v.test_counts.clone())).unwrap_or_default());
    let table = move || {
        data.with(|(confusion, classes, recall, counts)| {
            let k = classes.len();
            if k == 0 || confusion.len() != k * k {
                return view! { <p class="muted small">"Appears after the first evaluation."</p> }.into_any();
            }
            let max = confusion.iter().enumerate().filter(|(i, _)| i / k != i % k).map(|(_, &n)| n).max().unwrap_or(1).max(1);
            let head = classes.iter().map(|c| view! { <th class="rot"><span>{c.chars().take(4).collect::<String>()}</span></th> }).collect_view();
            let rows = (0..k)
                .map(|t| {
                    let cells = (0..k)
                        .map(|p| {
                            let n = confusion[t * k + p];
                            // At most 60 % red: the dark count stays readable (contrast ≥ 4.5:1).
                            let background = if t == p { String::new() } else { format!("rgba(220, 38, 38, {:.2})", (n as f32 / max as f32).sqrt() * 0.6) };
                            view! { <td class:diag=t == p style:background=background>{n}</td> }
                        })
                        .collect_view();
                    let r = recall.get(t).copied().unwrap_or(f32::NAN);
                    view! {
                        <tr><th>{classes[t].clone()}</th>{cells}
                            <td class="recall" data-recall=r.to_string()>{if r.is_finite() { format!("{:.0} %", r * 100.0) } else { "–".into() }}</td>
                            <td class="muted">{counts.get(t).copied().unwrap_or(0)}</td></tr>
                    }
                })
                .collect_view();
            view! {
                <table class="confusion rnn-confusion" id="confusion">
                    <caption>"rows: true language · columns: predicted · recall = share of that language's test names found · n = test names"</caption>
                    <tr><th></th>{head}<th>"recall"</th><th>"n"</th></tr>
                    {rows}
                </table>
            }
            .into_any()
        })
    };
    view! { <div class="card"><h4 class="card-title">"Confusion matrix (test names)"</h4><div class="table-scroll" tabindex="0" role="region" aria-label="confusion matrix (scrolls sideways)">{table}</div></div> }
}

/// Diverging colour of a value in [−1, 1]: blue below 0, red above.
fn tint(v: f32) -> String {
    let a = v.clamp(-1.0, 1.0);
    if a >= 0.0 {
        format!("rgba(220, 38, 38, {:.2})", a * 0.6)
    } else {
        format!("rgba(37, 99, 235, {:.2})", -a * 0.6)
    }
}

/// The typed name unrolled: one cell per character coloured by a hidden unit, the influence of
/// each character on the output, ‖∂L/∂h_t‖ through time, W_hh's spectral radius and clipping.
#[component]
pub fn GradientThroughTime(state: LabState) -> impl IntoView {
    let canvas = NodeRef::<html::Canvas>::new();
    // The hovered (or focused) character: the bars then show what drives the guess after it.
    let hovered = RwSignal::new(None::<usize>);
    let cells = move || {
        let unit = config(&state).unit;
        let at = hovered.get();
        with_view(&state, |v| {
            let p = &v.probe;
            let len = p.name.chars().count();
            let row = |l: usize| p.influence.get(l * len..(l + 1) * len).unwrap_or(&p.input_grads[..]);
            let grads = match at.filter(|&l| l < len) {
                Some(l) => row(l),
                None => &p.input_grads[..],
            };
            let peak = grads.iter().copied().fold(0.0f32, f32::max).max(1e-12);
            p.name
                .chars()
                .enumerate()
                .map(|(t, ch)| {
                    let h = p.states.get(t * p.hidden + unit).copied().unwrap_or(0.0);
                    let g = grads.get(t).copied().unwrap_or(0.0);
                    let after = at.is_some_and(|l| t > l);
                    view! {
                        <div class="unrolled-cell" class:hovered=at == Some(t) class:later=after tabindex="0"
                            title=format!("h[{unit}] = {h:.3} · ‖∂L/∂x‖ = {}", short(g))
                            on:mouseenter=move |_| hovered.set(Some(t)) on:focus=move |_| hovered.set(Some(t))
                            on:mouseleave=move |_| hovered.set(None) on:blur=move |_| hovered.set(None)>
                            <span class="unrolled-char" style:background=tint(h)>{ch.to_string()}</span>
                            <span class="influence" data-g=g.to_string()><span style:height=format!("{:.0}%", if after { 0.0 } else { (g / peak * 100.0).max(2.0) })></span></span>
                        </div>
                    }
                })
                .collect_view()
        })
    };
    let influence_note = move || {
        with_view(&state, |v| {
            let name: Vec<char> = v.probe.name.chars().collect();
            match hovered.get().filter(|&l| l < name.len()) {
                Some(l) => {
                    let prefix: String = name[..=l].iter().collect();
                    let guess = v.probe.prefixes.get(l).map(|g| format!("{} {:.0} %", g.class, g.p * 100.0)).unwrap_or_default();
                    format!("After \"{prefix}\" the guess is {guess}: the bars show how strongly each of those characters drives it.")
                }
                None => "Hover a character to see what drives the guess after it.".to_string(),
            }
        })
        .unwrap_or_default()
    };
    Effect::new(move |_| {
        let Some(c) = canvas.get() else { return };
        let Some((series, title)) = with_view(&state, |v| {
            let steps = |g: &[f32]| g.iter().enumerate().map(|(t, &n)| ((t + 1) as f64, n as f64)).collect::<Vec<_>>();
            (
                vec![Series::line("last mini-batch", BLUE, steps(&v.step_grads), 2), Series::line("the typed name", ORANGE, steps(&v.probe.state_grads), 2)],
                format!("‖∂L/∂h_t‖ through time · spectral radius of W_hh {:.2}", v.spectral_radius),
            )
        }) else {
            return;
        };
        state.draw_soon("rnn-grad-chart", move || {
            let spec = ChartSpec {
                title: &title,
                x_label: "time step t (character)",
                y_label: "‖∂L/∂h_t‖ (log)",
                log_y: true,
                x_range: None,
                y_range: None,
                band: None,
                log_x: false,
            };
            chart::draw(&c, &spec, &series);
        });
    });
    let clip = move || {
        with_view(&state, |v| {
            let c = &v.clip;
            if c.threshold > 0.0 {
                format!(
                    "Clipping at {}: {:.0} % of the last 100 steps clipped; ‖∇‖ before clipping: mean {}, largest {}.",
                    short(c.threshold),
                    c.clipped * 100.0,
                    short(c.mean_norm),
                    short(c.max_norm)
                )
            } else {
                "Clipping is off (set “clip ‖∇‖ at” to bound each step).".into()
            }
        })
        .unwrap_or_default()
    };
    view! {
        <div class="card" id="bptt">
            <h4 class="card-title">"Backpropagation through time, for the typed name"</h4>
            <p class="muted small">{move || format!("Each cell is one step of the unrolled network, coloured by hidden unit {} (blue −1 … red +1); the bar under it is how strongly that character drives the output (‖∂L/∂x_t‖ for L = −log p(top guess)).", config(&state).unit)}</p>
            <div class="unrolled" id="unrolled">{cells}</div>
            <p class="muted small" id="influence-note">{influence_note}</p>
            <canvas id="rnn-grad-chart" node_ref=canvas width="560" height="240"></canvas>
            <Show when=move || with_view(&state, |v| !v.step_grads_of.is_empty()).unwrap_or(false)>
                <p class="muted small" id="grad-rows">{move || with_view(&state, |v| v.step_grads_of.clone()).unwrap_or_default()}</p>
            </Show>
            <p class="muted small" id="clip-meter">{clip}</p>
        </div>
    }
}
