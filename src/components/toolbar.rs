//! Play / Pause / Step / Reset, the share link, and why training stopped.

use crate::client::LabState;
use crate::share;
use engine::lab::{Backend, Speed, WorkerCount};
use leptos::prelude::*;

#[component]
pub fn Toolbar(state: LabState) -> impl IntoView {
    let copied = RwSignal::new(false);
    let link = move || share::link_for(&state.query());
    let copy = move |_| {
        share::copy_to_clipboard(&link());
        copied.set(true);
        set_timeout(move || copied.set(false), std::time::Duration::from_millis(1500));
    };
    view! {
        <div class="toolbar">
            <button id="play" class="primary" disabled=move || !state.ready.get()
                on:click=move |_| state.toggle_play() title="space">
                {move || if state.running.get() { "❚❚ Pause" } else { "▶ Play" }}
            </button>
            <button id="step" on:click=move |_| state.step_once() title="s">"Step"</button>
            <button id="reset" on:click=move |_| state.reset() title="r: same seed, same initial weights">"↺ Reset"</button>
            <label class="speed" title="How many training steps per displayed frame: slow to watch each step, max to train as fast as this machine can (the numbers are the same at any speed)">
                <span class="muted small">"speed"</span>
                <select id="speed" on:change=move |ev| {
                    if let Some(s) = Speed::parse(&event_target_value(&ev)) { state.set_speed(s) }
                }>
                    {Speed::ALL.into_iter().map(|s| view! {
                        <option value=s.key() selected=move || state.speed.get() == s>{s.label()}</option>
                    }).collect_view()}
                </select>
            </label>
            <Show when=move || state.config.with(engine::lab::accelerates)>
                <BackendPicker state/>
            </Show>
            <Show when=move || state.config.with(engine::lab::splits)>
                <WorkersPicker state/>
            </Show>
            <span class="status" id="status">
                {move || state.status.get()}
            </span>
            <span class="spacer"></span>
            <input id="share-link" class="share" aria-label="share link: this run's whole configuration" readonly prop:value=link on:focus=move |ev| {
                use wasm_bindgen::JsCast;
                if let Some(i) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) { i.select(); }
            }/>
            <button id="copy-link" on:click=copy>{move || if copied.get() { "Copied ✓" } else { "Copy link" }}</button>
            <Show when=move || state.config.with(|c| c.lab() != "playground")>
                <button id="export-run" on:click=move |_| state.send(crate::protocol::Command::ExportRun)
                    title="save this run as a file: the link, the step counters and every weight — Open run… restores it">
                    "Save run"
                </button>
                <label class="button-like" title="open a run saved with Save run (any lab): its settings, counters and weights">
                    "Open run…"
                    <input id="import-run" type="file" accept=".json,application/json" on:change=move |ev| {
                        crate::share::read_file(state, "import", &ev, engine::lab::saved::MAX_BYTES as f64, move |json| {
                            // Checked here first: a refusal names the file's problem, and another
                            // lab's run says where to open it (this page draws this lab).
                            let here = state.config.with_untracked(|c| c.lab());
                            let refusal = match engine::lab::saved::SavedRun::parse(&json) {
                                Err(message) => Some(message),
                                Ok(run) if run.config().lab() != here => Some(format!("this file is a {} run: open it on that lab's page", run.config().lab())),
                                Ok(_) => None,
                            };
                            match refusal {
                                Some(message) => state.notices.update(|n| n.push(engine::lab::Notice { key: "import".into(), message })),
                                None => {
                                    state.history.set(Vec::new());
                                    state.records.set(Vec::new());
                                    state.send(crate::protocol::Command::ImportRun { json })
                                }
                            }
                        })
                    }/>
                </label>
            </Show>
            <Show when=move || state.config.with(|c| engine::export::supported(c).is_ok())>
                <button id="export-pytorch" on:click=move |_| state.send(crate::protocol::Command::ExportPytorch)
                    title="a Python script with this network, its current weights, the data preparation and the hyper-parameters: python run.py, or torchrun --nproc_per_node=N run.py">
                    "Export PyTorch"
                </button>
            </Show>
        </div>
        <p class="keys muted small">"Keys: space = play/pause · s = step · r = reset · ? = all shortcuts"</p>
    }
}

/// Where the steps run: the link's choice, and what runs them now (with why not, when asked
/// for WebGPU and it is missing or failed).
#[component]
fn BackendPicker(state: LabState) -> impl IntoView {
    let active = move || {
        state.placement.with(|p| match &p.gpu {
            Some(name) => format!("on WebGPU · {name}"),
            None => "on the CPU".to_string(),
        })
    };
    view! {
        <label class="speed" title="Where the training steps run. auto: the GPU when this browser has a hardware WebGPU adapter, else the CPU. The CPU and the GPU agree to about 1e-3 (relative loss); a switch mid-run keeps the weights (the optimiser's momentum restarts).">
            <span class="muted small">"backend"</span>
            <select id="backend" on:change=move |ev| {
                if let Some(b) = Backend::parse(&event_target_value(&ev)) { state.set_backend(b) }
            }>
                {Backend::ALL.into_iter().map(|b| view! {
                    <option value=b.key() selected=move || state.backend.get() == b>{b.label()}</option>
                }).collect_view()}
            </select>
        </label>
        <span id="backend-active" class="small" class:gpu=move || state.placement.with(|p| p.gpu.is_some())>{active}</span>
        <Show when=move || state.placement.with(|p| p.note.is_some())>
            <span id="backend-note" class="notice small" role="status">{move || state.placement.with(|p| p.note.clone())}</span>
        </Show>
    }
}

/// How many workers train, and what they do: `n workers · x examples/s`, or why one.
#[component]
fn WorkersPicker(state: LabState) -> impl IntoView {
    let cores = web_sys::window().map(|w| w.navigator().hardware_concurrency() as usize).unwrap_or(1).max(1);
    // 1 to the machine's cores (at least 4), and the link's count when it asks for more: the
    // select must show what trains, not fall back to its first option.
    let top = cores.clamp(4, engine::parallel::MAX_WORKERS);
    let choices = move || {
        let asked = match state.workers.get() {
            WorkerCount::Fixed(n) if n > top => Some(WorkerCount::Fixed(n)),
            _ => None,
        };
        std::iter::once(WorkerCount::Auto).chain((1..=top).map(WorkerCount::Fixed)).chain(asked).collect::<Vec<_>>()
    };
    let readout = move || {
        let examples = state.snapshot.with(|s| s.as_ref().and_then(|s| s.metrics.iter().find(|m| m.name == "examples_per_s").map(|m| m.value)));
        let examples = examples.filter(|_| state.running.get());
        state.placement.with(|p| p.workers.readout(examples))
    };
    view! {
        <label class="speed" title=format!("How many Web Workers train, each on its share of every mini-batch (this machine has {cores} logical cores; auto uses all but one). The numbers are the same bits for any count: the batch is split into fixed micro-shards whose gradients are summed in one fixed order. When the workers take every core, training rests 4 ms after each 12 ms so the page can still draw.")>
            <span class="muted small">"workers"</span>
            <select id="workers" on:change=move |ev| {
                if let Some(w) = WorkerCount::parse(&event_target_value(&ev)) { state.set_workers(w) }
            }>
                {move || choices().into_iter().map(|w| view! {
                    <option value=w.key() selected=move || state.workers.get() == w>{match w { WorkerCount::Auto => format!("auto ({})", WorkerCount::Auto.resolve(cores)), WorkerCount::Fixed(n) => n.to_string() }}</option>
                }).collect_view()}
            </select>
        </label>
        <span id="workers-active" class="small">{readout}</span>
        <Show when=move || state.placement.with(|p| p.workers_note.is_some())>
            <span id="workers-note" class="notice small" role="status">{move || state.placement.with(|p| p.workers_note.clone())}</span>
        </Show>
    }
}
