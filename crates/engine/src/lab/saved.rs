//! A run saved as a file and opened again, in every lab: the link (the whole config), the step
//! and epoch counters, and every trained network's parameters and buffers (the Batch Norm lab has
//! two). What the playground's own export adds (the points drawn by hand) stays in its panel.
//! Everything read back is checked: the format, the link (no notice), the counters, the sizes and
//! finiteness of every tensor — a file that doesn't fit is refused with a message, nothing changes.

use super::registry::LabConfig;
use super::Trainer;
use crate::data::images::Assets;
use crate::sequential::ModelState;
use serde::{Deserialize, Serialize};

/// The format written by [`SavedRun`] (checked on import).
pub const FORMAT: &str = "deeply-run-1";
/// The largest file read: LeNet-5's 62,000 weights are ~1.3 MB as JSON; the largest networks the
/// labs allow (2,000,000 parameters) about 40 MB.
pub const MAX_BYTES: usize = 64 << 20;
/// The counters a page can show exactly (2⁵³).
const MAX_COUNTER: u64 = 1 << 53;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedRun {
    pub format: String,
    pub link: String,
    pub step: u64,
    pub epoch: u64,
    /// One entry per trained network, in the lab's order.
    pub networks: Vec<ModelState>,
}

impl SavedRun {
    /// The run of `trainers` under `config` at the lead network's counters. Refused when a
    /// weight is not finite (JSON has no NaN: it would come back as `null`).
    pub fn of(config: &LabConfig, (step, epoch): (u64, u64), trainers: Vec<&mut Trainer>) -> Result<String, String> {
        let networks: Vec<ModelState> = trainers.into_iter().map(|t| t.model.state()).collect();
        if networks.iter().flat_map(|m| m.parameters.iter().chain(&m.buffers)).flatten().any(|v| !v.is_finite()) {
            return Err("the weights are not finite numbers (the run diverged): reset it before exporting".into());
        }
        let run = SavedRun { format: FORMAT.into(), link: config.to_query(), step, epoch, networks };
        Ok(serde_json::to_string(&run).expect("plain data"))
    }

    /// Reads and checks a saved run's JSON (not yet its networks' sizes: [`SavedRun::restore`]).
    pub fn parse(json: &str) -> Result<SavedRun, String> {
        if json.len() > MAX_BYTES {
            return Err(format!("the file is larger than {} MB", MAX_BYTES >> 20));
        }
        let run: SavedRun = serde_json::from_str(json).map_err(|e| format!("not a Deeply run: {e}"))?;
        if run.format != FORMAT {
            return Err(format!("format \"{}\" is not one this version reads ({FORMAT})", super::params::clip(&run.format)));
        }
        if run.step > MAX_COUNTER || run.epoch > MAX_COUNTER || run.epoch > run.step {
            return Err(format!("the step and epoch counters ({}, {}) are not a run's", run.step, run.epoch));
        }
        let parsed = super::parse_link(&run.link);
        if let Some(n) = parsed.notices.first() {
            return Err(format!("the file's link has a problem: {}", n.message));
        }
        Ok(run)
    }

    /// The config the run was saved under.
    pub fn config(&self) -> LabConfig {
        super::parse_link(&self.link).config
    }

    /// Puts the saved networks and counters into a session built from [`SavedRun::config`].
    pub fn restore(&self, trainers: Vec<&mut Trainer>) -> Result<(), String> {
        if trainers.len() != self.networks.len() {
            return Err(format!("the file holds {} networks, this lab trains {}", self.networks.len(), trainers.len()));
        }
        for (t, state) in trainers.into_iter().zip(&self.networks) {
            t.model.restore(state)?;
            t.resume_at(self.step, self.epoch);
        }
        Ok(())
    }
}

/// A session from a saved run's JSON (the data it needs must be in `assets`).
pub fn open(json: &str, assets: &Assets) -> Result<Box<dyn super::LabSession>, String> {
    let run = SavedRun::parse(json)?;
    let mut session = run.config().build(assets)?;
    session.restore(&run)?;
    Ok(session)
}
