//! The engine's [`Accelerator`] on a GPU: a lab's steps run as [`GpuNet`] steps, submitted
//! without waiting. Data comes back only when the trainer asks (`sync`, at display rate): one
//! staging buffer receives the loss ring, the weights, their gradients and the batch-norm
//! statistics in one copy, mapped asynchronously — the browser resolves the mapping while the
//! worker goes on. Progress for back-pressure comes from `on_submitted_work_done`, not readbacks.

use crate::context::Gpu;
use crate::net::{GpuNet, LOSS_RING};
use engine::lab::accel::{Accelerator, Synced};
use engine::lab::Trainer;
use engine::optim::{Hyper, OptimizerKind};
use engine::sequential::Sequential;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Ask the queue for a "work done" callback every this many steps.
const DONE_EVERY: u64 = 4;

type Shared<T> = Arc<Mutex<Option<T>>>;

struct Readback {
    /// Steps submitted when the copy was recorded: the weights read back are theirs.
    step: u64,
    mapped: Shared<Result<(), String>>,
}

pub struct GpuAccelerator {
    net: GpuNet,
    staging: wgpu::Buffer,
    floats: usize,
    pending: Option<Readback>,
    /// Steps known to be read back (their losses delivered).
    delivered: u64,
    /// Steps the GPU has finished, from the queue's callbacks.
    done: Arc<AtomicU64>,
    /// Device lost or an uncaptured error (out of memory…): the next call reports it.
    failure: Shared<String>,
}

impl GpuAccelerator {
    /// The trainer's model, batch size, optimiser and hyper-parameters on `gpu`; `input` is one
    /// example's shape. Err: what the GPU cannot run (the run stays on the CPU).
    pub fn new(gpu: &Gpu, trainer: &Trainer, input: &[usize]) -> Result<GpuAccelerator, String> {
        let hyper = Hyper { lr: trainer.current_lr(), ..trainer.hyper };
        let net = GpuNet::new(gpu, &trainer.model, input, trainer.batch_size.max(1), trainer.optimizer_kind, hyper)?;
        let floats: usize = net.readback_sources().iter().map(|b| b.len).sum();
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("snapshot readback"),
            size: (floats * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let failure: Shared<String> = Arc::default();
        gpu.device.set_device_lost_callback({
            let failure = failure.clone();
            move |_, message| {
                failure.lock().map(|mut f| *f = Some(format!("device lost: {message}"))).ok();
            }
        });
        gpu.device.on_uncaptured_error(Arc::new({
            let failure = failure.clone();
            move |error: wgpu::Error| {
                failure.lock().map(|mut f| *f = Some(error.to_string())).ok();
            }
        }));
        Ok(GpuAccelerator { net, staging, floats, pending: None, delivered: 0, done: Arc::default(), failure })
    }

    fn failed(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    fn poll(&self, wait: bool) {
        #[cfg(not(target_arch = "wasm32"))]
        let _ = self.net.gpu().device.poll(if wait { wgpu::PollType::wait_indefinitely() } else { wgpu::PollType::Poll });
        #[cfg(target_arch = "wasm32")]
        let _ = wait;
    }

    fn start_readback(&mut self) {
        let gpu = self.net.gpu();
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        let mut offset = 0u64;
        for buf in self.net.readback_sources() {
            let bytes = (buf.len * 4) as u64;
            encoder.copy_buffer_to_buffer(&buf.buffer, 0, &self.staging, offset, bytes);
            offset += bytes;
        }
        gpu.queue.submit([encoder.finish()]);
        let mapped: Shared<Result<(), String>> = Arc::default();
        self.staging.slice(..).map_async(wgpu::MapMode::Read, {
            let mapped = mapped.clone();
            move |r| {
                mapped.lock().map(|mut m| *m = Some(r.map_err(|e| format!("readback: {e}")))).ok();
            }
        });
        self.pending = Some(Readback { step: self.net.step, mapped });
    }

    /// Copies the mapped staging buffer into the model; the losses of the steps since the last.
    fn finish_readback(&mut self, step: u64, model: &mut Sequential) -> Result<Synced, String> {
        let data: Vec<f32> = {
            let view = self.staging.slice(..).get_mapped_range().map_err(|e| format!("readback: {e:?}"))?;
            bytemuck::cast_slice::<u8, f32>(&view)[..self.floats].to_vec()
        };
        self.staging.unmap();
        let (ring, rest) = data.split_at(LOSS_RING);
        self.net.write_into(rest, model)?;
        let first = (self.delivered + 1).max((step + 1).saturating_sub(LOSS_RING as u64));
        let losses = (first..=step).map(|s| (s, ring[((s - 1) as usize) % LOSS_RING])).collect();
        self.delivered = step;
        Ok(Synced { losses, step })
    }
}

impl Accelerator for GpuAccelerator {
    fn name(&self) -> String {
        self.net.adapter().to_string()
    }

    fn fits(&self, batch: usize, kind: OptimizerKind, hyper: &Hyper) -> bool {
        // Clipping and L1 need the global norm on the CPU: a rebuild refuses them with a message.
        batch <= self.net.batch() && kind == self.net.optimizer() && hyper.clip == 0.0 && hyper.l1 == 0.0
    }

    fn submit(&mut self, x: &[f32], classes: &[usize], hyper: &Hyper) -> Result<(), String> {
        if let Some(why) = self.failed() {
            return Err(why);
        }
        if *hyper != self.net.hyper() {
            self.net.set_hyper(*hyper)?;
        }
        self.net.step(x, classes)?;
        if self.net.step % DONE_EVERY == 0 {
            let (done, step) = (self.done.clone(), self.net.step);
            self.net.gpu().queue.on_submitted_work_done(move || {
                done.fetch_max(step, Ordering::Relaxed);
            });
        }
        Ok(())
    }

    fn ahead(&mut self) -> u64 {
        let ahead = self.net.step.saturating_sub(self.done.load(Ordering::Relaxed));
        // Natively the queue's callbacks fire only when polled; blocking is allowed there.
        self.poll(ahead >= engine::lab::accel::MAX_AHEAD);
        self.net.step.saturating_sub(self.done.load(Ordering::Relaxed))
    }

    fn sync(&mut self, model: &mut Sequential, wait: bool) -> Result<Option<Synced>, String> {
        if let Some(why) = self.failed() {
            return Err(why);
        }
        if self.pending.is_none() {
            if self.delivered == self.net.step {
                return Ok(Some(Synced { losses: Vec::new(), step: self.net.step }));
            }
            self.start_readback();
        }
        self.poll(wait);
        let pending = self.pending.as_ref().expect("started above");
        let result = pending.mapped.lock().map_err(|_| "readback state poisoned".to_string())?.take();
        match result {
            None => Ok(None),
            Some(Err(why)) => Err(why),
            Some(Ok(())) => {
                let step = pending.step;
                self.pending = None;
                self.finish_readback(step, model).map(Some)
            }
        }
    }
}
