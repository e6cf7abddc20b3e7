//! The device, its queue, the compiled kernels, and buffers in and out.

use crate::kernels::{Dispatch, Kernels};
use wgpu::util::DeviceExt;

/// A GPU: the adapter's name, the device and queue, the kernels compiled once.
#[derive(Clone)]
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    /// The adapter, as people know it ("llvmpipe (LLVM 15.0.6, 256 bits)", "NVIDIA H200", …).
    pub adapter: String,
    /// A software rasteriser (lavapipe, SwiftShader): right for correctness, never for speed.
    pub software: bool,
    pub(crate) kernels: std::sync::Arc<Kernels>,
}

/// A buffer of `len` 32-bit numbers on the GPU.
pub struct Buf {
    pub buffer: wgpu::Buffer,
    pub len: usize,
}

impl Gpu {
    /// The first adapter wgpu offers (a real GPU before a software one), with default limits.
    pub async fn new() -> Result<Gpu, String> {
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        if cfg!(target_arch = "wasm32") {
            // The browser's WebGPU only (WebGL has no compute shaders).
            descriptor.backends = wgpu::Backends::BROWSER_WEBGPU;
        }
        let instance = wgpu::Instance::new(descriptor);
        let options = wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() };
        let adapter = instance.request_adapter(&options).await.map_err(|e| format!("no GPU adapter: {e}"))?;
        let info = adapter.get_info();
        let software = info.device_type == wgpu::DeviceType::Cpu;
        let limits = wgpu::Limits { max_storage_buffers_per_shader_stage: 8, ..wgpu::Limits::downlevel_defaults() }.using_resolution(adapter.limits());
        let descriptor = wgpu::DeviceDescriptor { label: Some("deeply"), required_limits: limits, ..Default::default() };
        let (device, queue) = adapter.request_device(&descriptor).await.map_err(|e| format!("{}: no device ({e})", info.name))?;
        let kernels = std::sync::Arc::new(Kernels::new(&device));
        let adapter = if info.driver_info.is_empty() { info.name.clone() } else { format!("{} ({})", info.name, info.driver_info) };
        Ok(Gpu { device, queue, adapter, software, kernels })
    }

    /// [`Gpu::new`], waiting (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Gpu, String> {
        pollster::block_on(Gpu::new())
    }

    fn storage(&self, bytes: &[u8], len: usize) -> Buf {
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        // wgpu refuses empty bindings: a buffer holds at least one number.
        let padded;
        let contents = if bytes.is_empty() {
            padded = [0u8; 4];
            &padded[..]
        } else {
            bytes
        };
        Buf { buffer: self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents, usage }), len }
    }

    /// A buffer holding `data`.
    pub fn upload(&self, data: &[f32]) -> Buf {
        self.storage(bytemuck::cast_slice(data), data.len())
    }

    /// A buffer holding class indices.
    pub fn upload_u32(&self, data: &[u32]) -> Buf {
        self.storage(bytemuck::cast_slice(data), data.len())
    }

    pub fn zeros(&self, len: usize) -> Buf {
        self.upload(&vec![0.0; len])
    }

    /// Overwrites the start of `buf` with `data` (ordered before the next submission).
    pub fn write(&self, buf: &Buf, data: &[f32]) {
        assert!(data.len() <= buf.len, "{} numbers into a buffer of {}", data.len(), buf.len);
        self.queue.write_buffer(&buf.buffer, 0, bytemuck::cast_slice(data));
    }

    pub fn write_u32(&self, buf: &Buf, data: &[u32]) {
        assert!(data.len() <= buf.len, "{} numbers into a buffer of {}", data.len(), buf.len);
        self.queue.write_buffer(&buf.buffer, 0, bytemuck::cast_slice(data));
    }

    /// Records `dispatches` in one compute pass and submits them without waiting.
    pub fn run(&self, dispatches: &[Dispatch]) {
        self.submit(&[dispatches], None);
    }

    /// Lists of dispatches in one compute pass, then optionally one number copied from a buffer
    /// to a byte offset in another (a step's loss into the loss ring), in one submission.
    pub fn submit(&self, lists: &[&[Dispatch]], copy: Option<(&Buf, &Buf, u64)>) {
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            for d in lists.iter().flat_map(|l| l.iter()) {
                pass.set_pipeline(self.kernels.pipeline(d.kernel));
                pass.set_bind_group(0, &d.group, &[]);
                pass.dispatch_workgroups(d.groups.0, d.groups.1, 1);
            }
        }
        if let Some((from, to, offset)) = copy {
            encoder.copy_buffer_to_buffer(&from.buffer, 0, &to.buffer, offset, 4);
        }
        self.queue.submit([encoder.finish()]);
    }

    /// Copies `buf` back when the GPU has got there: the browser resolves the mapping on its own;
    /// natively the device is polled until it has.
    pub async fn read_async(&self, buf: &Buf) -> Result<Vec<f32>, String> {
        let bytes = (buf.len.max(1) * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        encoder.copy_buffer_to_buffer(&buf.buffer, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        rx.await.map_err(|_| "the GPU dropped a readback (device lost?)".to_string())?.map_err(|e| format!("readback: {e}"))?;
        let view = staging.slice(..).get_mapped_range().map_err(|e| format!("readback: {e:?}"))?;
        let out: Vec<f32> = bytemuck::cast_slice::<u8, f32>(&view).iter().take(buf.len).copied().collect();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// [`Gpu::read_async`], waiting (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(&self, buf: &Buf) -> Vec<f32> {
        pollster::block_on(self.read_async(buf)).expect("the readback mapped")
    }
}
