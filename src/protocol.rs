//! Messages between the UI (main thread) and the training worker. They cross `postMessage` as
//! plain JS objects (serde-wasm-bindgen), which keeps NaN and ±∞ intact — a diverged loss must
//! reach the UI as NaN, not as JSON's `null`. The enums are externally tagged (`{snapshot: …}`):
//! an internally tagged one (`{msg: "snapshot", …}`) is decoded by buffering the whole value and
//! decoding it again, which cost ~40 KB of the download and a second pass over every snapshot.

use engine::lab::timeline::{ForkSpec, TimelineView};
use engine::lab::vjp::VjpView;
use engine::lab::{LabCommand, LabReply, Snapshot};
use serde::{Deserialize, Serialize};

/// UI → worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Build a session from a share-link query (paused at step 0).
    Start {
        query: String,
    },
    Play,
    Pause,
    /// One optimiser step, then pause.
    Step,
    /// Rebuild from the current config and seed: the same initial weights as before.
    Reset,
    /// Change one config value by its link key.
    Set {
        key: String,
        value: String,
    },
    /// A deliberate crash (`deeplyDebug.panicWorker()`), proving the error panel in tests.
    Panic,
    /// Kills a helper worker without telling the run (`deeplyDebug.killWorker()`): the tests
    /// prove that a lost worker is noticed and the run goes on.
    KillWorker,
    /// Switches the helpers' copies between near and far at every job from now on
    /// (`deeplyDebug.switchCopies()`): the tests prove both, and every switch, train the same bits.
    SwitchCopies,
    /// The run as a PyTorch script (current weights); answered by `Exported` or `Rejected`.
    ExportPytorch,
    /// The run as JSON (link, counters, weights); answered by `Exported` or `Rejected`.
    ExportRun,
    /// Opens a run saved by `ExportRun` (any lab); answered by `Config` or `Rejected`.
    ImportRun {
        json: String,
    },
    /// Run a benchmark workload (`w1`, `w3`) for `seconds` on `workers`, in batches of `batch`;
    /// answered by `BenchDone`.
    Bench {
        workload: String,
        seconds: f64,
        #[serde(default)]
        workers: engine::lab::WorkerCount,
        /// Rows per mini-batch (None: the workload's own), as `deeply bench --batch`.
        #[serde(default)]
        batch: Option<usize>,
    },
    /// Run a benchmark workload once per count in `counts`, side by side (chunks of ~50 ms of
    /// each in turn, as `deeply bench --threads 1,2`); answered by `BenchSideBySideDone`.
    BenchSideBySide {
        workload: String,
        seconds: f64,
        counts: Vec<usize>,
        #[serde(default)]
        batch: Option<usize>,
    },
    /// How many workers train (`auto`: the cores but one); the steps are the same bits.
    Workers {
        workers: engine::lab::WorkerCount,
    },
    /// A lab's own command (the playground's points, the CNN's race…), typed per lab.
    Lab {
        command: LabCommand,
    },
    /// Train at most this many steps per displayed frame (`None`: as fast as possible).
    Speed {
        steps_per_frame: Option<u64>,
    },
    /// Where the steps run (`auto`, `cpu`, `webgpu`); a switch mid-run keeps the weights.
    Backend {
        backend: engine::lab::Backend,
    },
    /// Back to the checkpoint at `step` (paused there; Play continues bit for bit as before).
    Rewind {
        step: u64,
    },
    /// Forks at the checkpoint `spec.at`: A goes on as it was, B with `spec.key` set to `spec.value`.
    Fork {
        spec: ForkSpec,
    },
    /// Ends a fork, keeping branch B as the run (`b`) or A.
    Keep {
        b: bool,
    },
    /// The last mini-batch as a chain of VJPs, showing row `example`; answered by `Traced`.
    Trace {
        example: usize,
    },
}

/// Where the steps run now, for the page: `gpu` names the adapter when they run on WebGPU;
/// `note` says why they don't when that was asked for (or why auto chose the CPU).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub gpu: Option<String>,
    pub note: Option<String>,
    /// How the steps spread over workers (asked, used, why one).
    #[serde(default)]
    pub workers: engine::lab::Workers,
    /// A worker lost, or why several can't train here.
    #[serde(default)]
    pub workers_note: Option<String>,
}

/// Worker → UI.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// The worker is listening; commands sent before this are lost.
    Ready,
    /// The latest state; `running` says whether training continues.
    /// `memory`: the worker's wasm memory in bytes (it only grows: the tests check it stays flat).
    /// `timeline`: the checkpoints kept and a fork's branch B (its new records).
    Snapshot { snapshot: Box<Snapshot>, running: bool, reason: Option<String>, memory: f64, placement: Placement, timeline: TimelineView },
    /// The run went back to the checkpoint at `step` (or forked there): later records are gone.
    Rewound { step: u64 },
    /// Branch B became the run: its link (the page's curve becomes B's).
    KeptBranch { query: String },
    /// A `Set` was applied; `reset` says whether the session was rebuilt.
    Applied { key: String, reset: bool, query: String },
    /// A `Set` was refused.
    Rejected { key: String, message: String },
    /// The session's config changed from the worker's side (own points, import): the new link.
    Config { query: String },
    /// A benchmark's result, or why it could not run.
    BenchDone { result: Result<engine::lab::bench::BenchResult, String> },
    /// The results of a `BenchSideBySide`, one per count in its order, or why it could not run.
    BenchSideBySideDone { results: Result<Vec<engine::lab::bench::BenchResult>, String> },
    /// A file for the user to save (the PyTorch export).
    Exported { filename: String, text: String },
    /// The GPU worker found no WebGPU adapter (or lost its device): why, so the page can say so
    /// and run the benchmark on the CPU.
    GpuUnavailable { reason: String },
    /// Data files are being fetched: bytes so far and in all (0 when not known yet).
    Loading { what: String, loaded: f64, total: f64 },
    /// Data could not be loaded.
    LoadFailed { message: String },
    /// A lab's answer to one of its own commands.
    Lab { reply: LabReply },
    /// The backprop view of the last mini-batch, or why there is none.
    Traced { result: Result<VjpView, String> },
    /// The worker failed (a panic); it can no longer train.
    Error { message: String },
}

use wasm_bindgen::JsValue;

/// Encodes a message or command for `postMessage`.
pub fn encode<T: Serialize>(value: &T) -> JsValue {
    value.serialize(&serde_wasm_bindgen::Serializer::new()).expect("protocol values serialise")
}

/// Decodes what `postMessage` delivered.
pub fn decode<T: for<'de> Deserialize<'de>>(value: JsValue) -> Result<T, String> {
    serde_wasm_bindgen::from_value(value).map_err(|e| e.to_string())
}
