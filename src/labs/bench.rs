//! The benchmark page (`?lab=bench&workload=w1`, or `w3`, which loads MNIST first; `&workers=N`,
//! `&batch=N` as the CLI's `--threads` and `--batch`): runs a workload in the training worker and
//! writes `{"workload", "items_per_s", "ms_per_step", "backend"}` as JSON into `#bench-results`.
//! `&backend=webgpu` runs it in the GPU worker (w2, w2bn, w3); without WebGPU the page says why
//! and runs it on the CPU (`"fallback"` in the JSON). `&workers=1,2` runs one session per count
//! side by side, a chunk of each in turn (as `deeply bench --threads 1,2`): the JSON is then an
//! array, one object per count.

use crate::fatal;
use crate::protocol::{decode, encode, Command, Message};
use engine::lab::bench::BenchResult;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use web_sys::MessageEvent;

/// The two workers, by name in messages.
const CPU: &str = "the CPU worker";
const GPU: &str = "the GPU worker";

/// What a benchmark page runs: `workload` for `seconds` as `job` says, in mini-batches of
/// `batch` rows (None: the workload's own).
#[derive(Clone)]
struct Run {
    workload: String,
    seconds: f64,
    job: Job,
    batch: Option<usize>,
}

/// One run on a number of workers, or one per count side by side.
#[derive(Clone)]
enum Job {
    On(engine::lab::WorkerCount),
    SideBySide(Vec<usize>),
}

impl Run {
    fn command(&self) -> Command {
        let (workload, seconds, batch) = (self.workload.clone(), self.seconds, self.batch);
        match &self.job {
            Job::On(workers) => Command::Bench { workload, seconds, workers: *workers, batch },
            Job::SideBySide(counts) => Command::BenchSideBySide { workload, seconds, counts: counts.clone(), batch },
        }
    }
}

/// What the worker answered: one result per count asked (one for a plain run).
type Outcome = Option<Result<Vec<BenchResult>, String>>;

/// Starts a worker (`url`: CPU or GPU), kept in `kept` for the runs asked later, that runs `run`
/// once it is ready; its answers go to `result`, its loading progress to `loading`, and a missing
/// WebGPU to `on_unavailable`.
fn start_worker(
    url: &str,
    run: Run,
    result: RwSignal<Outcome>,
    loading: RwSignal<Option<String>>,
    kept: StoredValue<Option<web_sys::Worker>, LocalStorage>,
    on_unavailable: impl Fn(String) + 'static,
) {
    let workload = run.workload.clone();
    let worker = match crate::client::new_worker(url == GPU) {
        Ok(w) => w,
        Err(e) => return result.set(Some(Err(format!("could not start {url}: {e:?}")))),
    };
    kept.set_value(Some(worker.clone()));
    let w2 = worker.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| match decode::<Message>(event.data()) {
        Ok(Message::Ready) => {
            let _ = w2.post_message(&encode(&run.command()));
        }
        Ok(Message::BenchDone { result: r }) => result.set(Some(r.map(|r| vec![r]))),
        Ok(Message::BenchSideBySideDone { results }) => result.set(Some(results)),
        Ok(Message::Loading { what, loaded, total }) => {
            // Once loaded, the page says what runs (a warm-up of several seconds, then the timing).
            let done = total > 0.0 && loaded >= total;
            loading.set((!done).then(|| format!("Loading {what}: {:.1} of {:.1} MB…", loaded / 1e6, total / 1e6)));
        }
        Ok(Message::LoadFailed { message }) => result.set(Some(Err(message))),
        Ok(Message::GpuUnavailable { reason }) => {
            w2.terminate();
            on_unavailable(reason);
        }
        Ok(Message::Error { message }) => fatal::show(&message),
        _ => {}
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    // A worker that fails outside Rust's panic hook (a trap, a script error) still reports.
    let query = format!("lab=bench&workload={workload}");
    let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |e: web_sys::ErrorEvent| {
        let message = fatal::worker_failed(&e.message(), &query);
        result.set(Some(Err(message.clone())));
        fatal::show(&message);
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
}

/// A finished run's row in the page's table: the count asked, its result, and the side-by-side
/// run it belongs to (numbered from 1; None: it ran alone).
#[derive(Clone)]
struct Row {
    asked: usize,
    result: BenchResult,
    group: Option<usize>,
}

/// `backend`: `cpu` (the training worker), `webgpu` or `auto` (the GPU worker; without WebGPU the
/// page says why and runs on the CPU).
/// `workers`: the link's value: `auto`, a count (a bad one runs on one worker, the summary says
/// how many ran), or a list (`1,2`) to run side by side (a bad list is refused by name).
/// `batch`: the link's `batch` (rows per mini-batch; absent: the workload's own).
///
/// After the link's run, buttons run the workload again on 1 to 4 workers in the same worker, or
/// on 1, 2 … side by side, and a table lists every run with its speed against a one-worker run
/// (side by side: the one beside it): the scaling, measured on this machine. (Only on request: a
/// script's runs must not find the CPU busy with another.)
#[component]
pub fn BenchPage(workload: String, seconds: f64, backend: String, workers: Option<String>, batch: Option<String>) -> impl IntoView {
    let result = RwSignal::new(None::<Result<Vec<BenchResult>, String>>);
    let loading = RwSignal::new(None::<String>);
    let fallback = RwSignal::new(None::<String>);
    let kept = StoredValue::new_local(None::<web_sys::Worker>);
    let runs = RwSignal::new(Vec::<Row>::new());
    let cores = hardware_concurrency();
    let job = match workers.as_deref() {
        Some(list) if list.contains(',') => match engine::lab::bench::parse_counts(list, cores) {
            Ok(counts) => Job::SideBySide(counts),
            Err(message) => {
                result.set(Some(Err(message)));
                Job::On(engine::lab::WorkerCount::Fixed(1))
            }
        },
        other => Job::On(other.and_then(engine::lab::WorkerCount::parse).unwrap_or(engine::lab::WorkerCount::Fixed(1))),
    };
    // The counts of the run in progress, and whether they run side by side.
    let asked = RwSignal::new(match &job {
        Job::On(w) => (vec![w.resolve(cores)], false),
        Job::SideBySide(counts) => (counts.clone(), true),
    });
    let busy = RwSignal::new(true);
    let known = engine::lab::bench::Workload::parse(&workload);
    let batch = match batch.map(|b| b.trim().parse::<usize>().map_err(|_| b)).transpose() {
        Ok(b) => b,
        Err(bad) => {
            result.set(Some(Err(format!("batch=\"{}\" is not a number of rows (1 to 1024)", bad.chars().take(20).collect::<String>()))));
            None
        }
    };
    Effect::new(move |_| {
        if let Some(r) = result.get() {
            busy.set(false);
            if let Ok(results) = r {
                let (counts, side) = asked.get_untracked();
                runs.update(|v| {
                    let group = side.then(|| v.iter().filter_map(|r| r.group).max().unwrap_or(0) + 1);
                    v.extend(results.into_iter().zip(counts).map(|(result, asked)| Row { asked, result, group }));
                });
            }
        }
    });
    let run = Run { workload: workload.clone(), seconds, job, batch };
    let on_cpu = {
        let run = run.clone();
        move |reason: String| {
            fallback.set(Some(format!("WebGPU is not available here ({reason}): the benchmark ran on the CPU instead.")));
            start_worker(CPU, run.clone(), result, loading, kept, |_| {});
        }
    };
    match backend.as_str() {
        _ if result.get_untracked().is_some() => busy.set(false),
        "webgpu" | "auto" => start_worker(GPU, run, result, loading, kept, on_cpu),
        _ => start_worker(CPU, run, result, loading, kept, |_| {}),
    }
    let again = {
        let workload = workload.clone();
        move |job: Job| {
            let Some(worker) = kept.get_value() else { return };
            if busy.get_untracked() {
                return;
            }
            busy.set(true);
            asked.set(match &job {
                Job::On(w) => (vec![w.resolve(cores)], false),
                Job::SideBySide(counts) => (counts.clone(), true),
            });
            result.set(None);
            let command = Run { workload: workload.clone(), seconds, job, batch }.command();
            if worker.post_message(&encode(&command)).is_err() {
                busy.set(false);
            }
        }
    };
    let json = move || match result.get() {
        Some(Ok(results)) => {
            let one = |r: &BenchResult| {
                serde_json::json!({
                    "workload": r.workload, "items_per_s": r.items_per_s, "ms_per_step": r.ms_per_step, "backend": r.backend, "steps": r.steps, "workers": r.workers,
                    "fallback": fallback.get()
                })
            };
            match results.as_slice() {
                [r] if !asked.get().1 => one(r).to_string(),
                all => serde_json::Value::Array(all.iter().map(one).collect()).to_string(),
            }
        }
        Some(Err(e)) => serde_json::json!({ "error": e }).to_string(),
        None => String::new(),
    };
    let item = known.map_or("items", |w| w.item());
    let summary = {
        let workload = workload.clone();
        let batched = batch.map(|b| format!(" in batches of {b}")).unwrap_or_default();
        move || {
            match result.get() {
            Some(Ok(results)) if asked.get().1 => {
                let base = results.first().map(|r| r.items_per_s).filter(|v| *v > 0.0);
                let each = results
                    .iter()
                    .enumerate()
                    .map(|(k, r)| {
                        let vs = base.filter(|_| k > 0).map(|b| format!(" ({:.2}× the first)", r.items_per_s / b)).unwrap_or_default();
                        format!("{} {} on {}{vs}", thousands(r.items_per_s), per_second(item), on_workers(r.workers))
                    })
                    .collect::<Vec<_>>()
                    .join(" · ");
                format!("{workload}{batched}, side by side: {each}")
            }
            Some(Ok(results)) => match results.first() {
                Some(r) => format!(
                    "{}{batched}: {} {} on {} ({:.4} ms per step, {} steps, {})",
                    r.workload,
                    thousands(r.items_per_s),
                    per_second(item),
                    on_workers(r.workers),
                    r.ms_per_step,
                    r.steps,
                    r.backend
                ),
                None => "the worker answered with no result".into(),
            },
            Some(Err(e)) => e,
            None if busy.get() && !runs.with(|r| r.is_empty()) => match asked.get() {
                (counts, true) => format!("Running {workload} side by side on {} workers…", engine::lab::bench::join_counts(&counts)),
                (counts, false) => format!("Running {workload} on {}…", on_workers(counts.first().copied().unwrap_or(1))),
            },
            None => loading.get().unwrap_or_else(|| match asked.get() {
                (counts, true) => format!(
                    "Running {workload} in the training worker on {} workers side by side: each warmed up until its speed settles, then chunks of each in turn until each has {seconds} s timed…",
                    engine::lab::bench::join_counts(&counts)
                ),
                _ => format!("Running {workload} in the training worker: a warm-up until its speed settles, then {seconds} s timed…"),
            }),
        }
        }
    };
    let rows = move || {
        runs.with(|runs| {
            // Against a one-worker run: side by side, the one in the same run; alone, the first alone.
            let one_alone = runs.iter().find(|r| r.group.is_none() && r.result.workers == 1).map(|r| r.result.items_per_s);
            runs.iter()
                .map(|row| {
                    let one = match row.group {
                        Some(g) => runs.iter().find(|r| r.group == Some(g) && r.result.workers == 1).map(|r| r.result.items_per_s),
                        None => one_alone,
                    };
                    let vs = one.filter(|o| *o > 0.0).map_or_else(|| "–".to_string(), |o| format!("{:.2}×", row.result.items_per_s / o));
                    let how = row.group.map_or_else(|| "alone".to_string(), |g| format!("side by side #{g}"));
                    let r = &row.result;
                    view! {
                        <tr>
                            <td>{how}</td>
                            <td>{row.asked}</td>
                            <td>{r.workers}</td>
                            <td>{thousands(r.items_per_s)}</td>
                            <td>{format!("{:.3}", r.ms_per_step)}</td>
                            <td>{vs}</td>
                            <td>{r.backend.clone()}</td>
                        </tr>
                    }
                })
                .collect_view()
        })
    };
    let button = {
        let again = again.clone();
        move |label: String, job: Job, class: &'static str| {
            let again = again.clone();
            view! {
                <button class=class disabled=move || busy.get() || kept.with_value(|k| k.is_none()) on:click=move |_| again(job.clone())>
                    {label}
                </button>
            }
        }
    };
    let buttons = (1..=4usize).map(|n| button(on_workers(n), Job::On(engine::lab::WorkerCount::Fixed(n)), "bench-again")).collect_view();
    // Side by side: one worker against each count up to this machine's cores (2 to 4 counts).
    let side: Vec<usize> = (1..=cores.clamp(2, 4)).collect();
    let side_button = button(format!("{} side by side", engine::lab::bench::join_counts(&side)), Job::SideBySide(side), "bench-again bench-side");
    let others = engine::lab::bench::WORKLOADS.split(", ").map(|w| view! { <a href=format!("?lab=bench&workload={w}")>{w}</a>" · " }).collect_view();
    let title = format!("Benchmark: {workload}");
    let cli = format!("deeply bench {workload} --threads N");
    view! {
        <div class="intro">
            <h1>{title}</h1>
            <p>"The training loop alone, in the same Web Worker the labs use: no snapshots, no drawing. "{known.map(|w| w.describe())}</p>
            <p class="notice" id="bench-fallback" hidden=move || fallback.get().is_none()>{move || fallback.get()}</p>
            <p class="bench-summary" id="bench-summary">{summary}</p>
            <div class="bench-scaling" hidden=move || runs.with(|r| r.is_empty())>
                // The title outside the scrolling box: a caption is as wide as its table, and on a
                // phone the table scrolls, which clipped it.
                <p class="table-title" id="bench-runs-title">{format!("Runs on this machine ({seconds} s timed each; {item} per second)")}</p>
                <div class="table-scroll"><table class="confusion" id="bench-runs" aria-labelledby="bench-runs-title">
                    <thead><tr><th>"run"</th><th>"workers asked"</th><th>"trained on"</th><th>{format!("{item}/s")}</th><th>"ms per step"</th><th>"vs 1 worker"</th><th>"backend"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table></div>
                <p class="small">"Run again on "{buttons}" or "{side_button}</p>
                <p class="small muted">
                    {format!("This machine has {cores} logical cores; {}. Side by side, one session per count trains a chunk of ~50 ms in turn, so a machine that slows for a few seconds slows every count alike. Natively: ", known.map_or("", splits))}
                    <code>{cli}</code>" or "<code>"--threads 1,2"</code>
                </p>
            </div>
            <p class="small muted">"Workloads: "{others}<a href="./">"the labs"</a></p>
            <pre id="bench-results">{json}</pre>
        </div>
    }
    .into_any()
}

/// `1 worker`, `2 workers`.
fn on_workers(n: usize) -> String {
    format!("{n} worker{}", if n == 1 { "" } else { "s" })
}

/// `examples per second`.
fn per_second(item: &str) -> String {
    format!("{item} per second")
}

/// `12345.6` as `12,346`.
fn thousands(v: f64) -> String {
    engine::lab::workers::thousands(v.max(0.0).round() as u64)
}

/// How a workload's batches split over workers (see `engine::parallel`).
fn splits(w: engine::lab::bench::Workload) -> &'static str {
    use engine::lab::bench::Workload;
    match w {
        Workload::W2 | Workload::W3 => "a batch of 64 splits into 4 shards of 16 rows, at most one worker each",
        Workload::W2bn => "batch norm needs the whole mini-batch, so it trains on one worker",
        Workload::W1 => "this network is small: one worker trains it fastest",
        Workload::W4 => "a batch of 32 sequences is too small to split (from 64 it splits in shards of 32)",
    }
}

/// Logical cores as the browser reports them (at least 1).
fn hardware_concurrency() -> usize {
    web_sys::window().map(|w| w.navigator().hardware_concurrency() as usize).unwrap_or(1).max(1)
}
