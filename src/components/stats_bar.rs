//! The run's headline numbers. Each value carries its exact f32 text in `data-value`, which the
//! end-to-end tests compare with the CLI's output.

use crate::client::LabState;
use crate::format::{exact, short};
use leptos::prelude::*;

#[component]
fn Stat(
    id: &'static str,
    label: &'static str,
    value: Signal<Option<f32>>,
    #[prop(into, default = Signal::stored(""))] help: Signal<&'static str>,
) -> impl IntoView {
    view! {
        <div class="stat" title=help>
            <span class="stat-label">{label}</span>
            <span class="stat-value" id=id data-value=move || value.get().map(exact).unwrap_or_default()>
                {move || value.get().map(short).unwrap_or_else(|| "–".into())}
            </span>
        </div>
    }
}

#[component]
pub fn StatsBar(state: LabState) -> impl IntoView {
    let snap = state.snapshot;
    let step = move || snap.with(|s| s.as_ref().map(|s| s.step));
    // Before the first step there is no loss yet, and without test points no test loss: "–".
    // A NaN shows only when the run diverged (then it is the news).
    let pick = move |f: fn(&engine::lab::Snapshot) -> f32| {
        Signal::derive(move || snap.with(|s| s.as_ref().filter(|s| !f(s).is_nan() || (s.diverged && s.step > 0)).map(f)))
    };
    // Steps actually trained per second (paced speeds train fewer than the worker could).
    let speed = move || match state.rate.get() {
        Some(r) if state.running.get() => format!("{} steps/s", crate::format::short(r as f32)),
        _ => "–".into(),
    };
    let metrics = move || {
        snap.with(|s| {
            s.as_ref().map(|s| {
                s.metrics
                    .iter()
                    .map(|m| {
                        let (label, help) = metric_label(&m.name);
                        view! {
                            <div class="stat" title=help>
                                <span class="stat-label">{label}</span>
                                <span class="stat-value" id=format!("stat-{}", m.name.replace('_', "-")) data-value=exact(m.value)>{short(m.value)}</span>
                            </div>
                        }
                    })
                    .collect_view()
            })
        })
    };
    let lab = move || state.config.with(|c| c.lab());
    let help = RwSignal::new(false);
    view! {
        <Show when=move || help.get()>
            <StatsHelp lab=Signal::derive(lab)/>
        </Show>
        <div class="stats-bar">
            <div class="stat">
                <span class="stat-label">"step"</span>
                <span class="stat-value" id="stat-step">{move || step().map(|s| s.to_string()).unwrap_or_else(|| "–".into())}</span>
            </div>
            // Labs that report a fractional epoch (the CNN's "epochs") show that one only.
            <Show when=move || snap.with(|s| s.as_ref().is_none_or(|s| !s.metrics.iter().any(|m| m.name == "epoch_fraction")))>
                <div class="stat">
                    <span class="stat-label">"epoch"</span>
                    <span class="stat-value" id="stat-epoch">{move || snap.with(|s| s.as_ref().map(|s| s.epoch.to_string()).unwrap_or_else(|| "–".into()))}</span>
                </div>
            </Show>
            <Stat id="stat-loss" label="batch loss" value=pick(|s| s.loss) help="loss of the last mini-batch"/>
            <Stat id="stat-train-loss" label="train loss" value=pick(|s| s.train_loss) help=Signal::derive(move || loss_help(&lab()).0)/>
            <Stat id="stat-test-loss" label="test loss" value=pick(|s| s.test_loss) help=Signal::derive(move || loss_help(&lab()).1)/>
            <Stat id="stat-grad-norm" label="‖∇‖" value=pick(|s| s.grad_norm) help="global gradient norm of the last step (before clipping)"/>
            {metrics}
            <div class="stat">
                <span class="stat-label">"speed"</span>
                <span class="stat-value" id="stat-speed">{speed}</span>
            </div>
            <div class="stat" title="memory of the training worker's WebAssembly instance (it grows, never shrinks)">
                <span class="stat-label">"memory"</span>
                <span class="stat-value" id="stat-memory" data-bytes=move || state.worker_memory.get().to_string()>
                    {move || format!("{:.0} MB", state.worker_memory.get() / 1048576.0)}
                </span>
            </div>
            <button class="ghost help-toggle" id="stats-help-toggle" title="what these numbers mean" aria-expanded=move || help.get().to_string()
                on:click=move |_| help.update(|h| *h = !*h)>"?"</button>
        </div>
        <EpochProgress state/>
    }
}

/// How far the current epoch is, and when it ends at the measured speed — shown while a run
/// whose epochs take more than a few seconds trains.
#[component]
fn EpochProgress(state: LabState) -> impl IntoView {
    // (whole percent done, whole seconds left, epoch number): a memo, so the bar's DOM changes
    // only when what it shows does (a few times a second), not with every snapshot.
    let progress = Memo::new(move |_| {
        let rate = state.rate.get().filter(|r| *r > 0.0 && state.running.get())?;
        state.snapshot.with(|s| {
            let s = s.as_ref()?;
            let epoch_seconds = s.steps_per_epoch as f64 / rate;
            let left = ((1.0 - s.epoch_progress as f64) * epoch_seconds).round() as u64;
            (epoch_seconds > 5.0).then(|| ((s.epoch_progress * 100.0).floor() as u32, left, s.epoch + 1))
        })
    });
    view! {
        <Show when=move || progress.with(|p| p.is_some())>
            <div class="epoch-progress" id="epoch-progress" role="progressbar" aria-valuemin="0" aria-valuemax="100"
                aria-label="progress of the current epoch" aria-valuenow=move || progress.get().map(|p| p.0.to_string())>
                <span class="epoch-bar"><span style:width=move || progress.get().map(|p| format!("{}%", p.0))></span></span>
                <span class="small muted" id="epoch-eta">{move || progress.get().map(|(done, left, epoch)| format!("epoch {epoch}: {done} % · about {} left", duration(left as f64)))}</span>
            </div>
        </Show>
    }
}

/// "42 s", "3 min 05 s", "1 h 12 min".
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// What a lab's "train loss" and "test loss" measure: the small labs evaluate every point at
/// each snapshot, the big ones at their evaluations.
fn loss_help(lab: &str) -> (&'static str, &'static str) {
    match lab {
        "cnn" => ("the mean loss of the mini-batches since the last evaluation", "the loss over the 10,000 test images, at the last evaluation"),
        "batchnorm" => ("the BN net's loss on its latest mini-batch", "the BN net's loss over the 10,000 test images, at the last evaluation"),
        "rnn" => ("the mean loss of the mini-batches since the last evaluation", "the loss over the held-out names or text, at the last evaluation"),
        _ => ("the loss over all training points, in evaluation mode", "the loss over the held-out test points, in evaluation mode"),
    }
}

/// Display name and explanation of a snapshot metric.
/// What the headline numbers mean, in a few words each (the "?" beside them).
#[component]
fn StatsHelp(lab: Signal<&'static str>) -> impl IntoView {
    let (train, test) = loss_help(lab.get_untracked());
    let items: Vec<(&str, String)> = [
        ("batch loss", "the loss of the last mini-batch: noisy, because each batch is a different sample".to_string()),
        ("train / test loss", format!("train: {train}; test: {test}. Test far above train means memorising")),
        ("‖∇‖", "the length of the whole gradient of the last step: huge values mean steps that overshoot, tiny ones a flat region or dead units".to_string()),
        ("update:data", "per layer (in the layer cards): how much one step changes the weights relative to their size — about 1e-3 is healthy; 1e-1 is too fast, 1e-5 crawls".to_string()),
        ("loss outside", "the fit lab's error beyond the training interval: a network knows nothing about x it never saw".to_string()),
        ("speed", "training steps per second actually run (the speed control paces them; max trains as fast as this machine can)".to_string()),
        ("examples/s", "training examples per second (the test set's evaluations left out)".to_string()),
    ]
    .into();
    view! {
        <dl class="stats-help" id="stats-help">
            {items.into_iter().map(|(term, text)| view! { <dt>{term}</dt><dd>{text}</dd> }).collect_view()}
        </dl>
    }
}

fn metric_label(name: &str) -> (String, &'static str) {
    match name {
        "test_r2" => ("test R²".into(), "1 − MSE / variance of y on the test points: 1 is a perfect fit, 0 no better than the mean"),
        "extended_loss" => ("loss outside".into(), "MSE (model units) on the extended range outside the training interval"),
        "test_accuracy" => ("test accuracy".into(), "share of test examples classified correctly"),
        "train_accuracy" => {
            ("train accuracy".into(), "share of training examples classified correctly (CNN lab: of the mini-batches since the last evaluation)")
        }
        "lr" => ("learning rate".into(), "the rate the next step uses (after the schedule)"),
        "examples_per_s" => ("examples/s".into(), "training examples per second (the test set's evaluations left out)"),
        "epoch_fraction" => ("epochs".into(), "passes over the training set so far"),
        "val_accuracy" => ("validation acc.".into(), "share of the validation names classified correctly (latest evaluation)"),
        "balanced_accuracy" => ("balanced acc.".into(), "mean per-class recall on the test names: each language counts the same however many names it has"),
        "best_epoch" => ("best epoch".into(), "the epoch with the best validation accuracy so far (early stopping keeps it)"),
        "best_test_accuracy" => ("test acc. @ best".into(), "test accuracy at the best validation epoch"),
        "baseline_test_accuracy" => ("naive Bayes".into(), "test accuracy of a character 1–3-gram naive-Bayes classifier on the same split"),
        "plain_test_accuracy" => ("plain: test acc.".into(), "the plain net on all 10,000 test images (latest evaluation)"),
        "bn_test_accuracy" => ("BN: test acc.".into(), "the BN net in evaluation mode (running statistics) on all 10,000 test images"),
        "bn_test_accuracy_train_mode" => ("BN: train-mode acc.".into(), "the BN net left in training mode: each test batch normalised by its own statistics"),
        "plain_test_loss" => ("plain: test loss".into(), "cross-entropy of the plain net on the test images"),
        "bn_test_loss" => ("BN: test loss".into(), "cross-entropy of the BN net (evaluation mode) on the test images"),
        "plain_percentile_drift" => ("plain: input drift".into(), "how far the tracked unit's input percentiles moved, over their spread"),
        "bn_percentile_drift" => ("BN: input drift".into(), "how far the tracked unit's input percentiles moved, over their spread"),
        other => (other.replace('_', " "), ""),
    }
}
