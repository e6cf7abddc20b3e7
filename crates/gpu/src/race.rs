//! The GPU's lane of the CNN race: the mini-batch the CPU lanes raced, through every conv layer
//! forward and both backward passes on the GPU, timed from the submission until the outputs are
//! read back (so the transfer back counts, as it would for a real step's results), and compared
//! with the CPU's im2col outputs.

use crate::context::Gpu;
use crate::kernels::ConvShape;
use engine::lab::accel::{RaceLane, RaceProbe};

pub async fn lane(gpu: &Gpu, probe: &RaceProbe, now_ms: &mut dyn FnMut() -> f64) -> Result<RaceLane, String> {
    let mut dispatches = Vec::new();
    let mut outputs = Vec::new();
    // Buffers made (and uploaded) before the clock starts: the CPU lanes don't count theirs.
    let mut keep = Vec::new();
    for l in &probe.layers {
        let [n, c, h, w, o, k, s, p] = l.shape;
        let shape = ConvShape { n, c, h, w, o, k, s, p };
        let (oh, ow) = shape.out();
        if l.x.len() != n * c * h * w || l.y.len() != n * o * oh * ow || l.dy.len() != l.y.len() || l.w.len() != o * c * k * k {
            return Err("the race's layers don't match their shapes".into());
        }
        let (x, wt, b, dy) = (gpu.upload(&l.x), gpu.upload(&l.w), gpu.upload(&l.b), gpu.upload(&l.dy));
        let (y, dx, dw, db) = (gpu.zeros(l.y.len()), gpu.zeros(l.x.len()), gpu.zeros(l.w.len()), gpu.zeros(o));
        dispatches.push(gpu.conv2d_forward(&x, &wt, &b, &y, shape));
        dispatches.push(gpu.conv2d_backward_input(&dy, &wt, &dx, shape));
        dispatches.extend(gpu.conv2d_backward_weight(&dy, &x, &dw, &db, shape));
        outputs.push(y);
        keep.push([x, wt, b, dy, dx, dw, db]);
    }
    let t0 = now_ms();
    gpu.run(&dispatches);
    let mut max_diff = 0.0f32;
    for (y, l) in outputs.iter().zip(&probe.layers) {
        let got = gpu.read_async(y).await?;
        max_diff = got.iter().zip(&l.y).map(|(a, b)| (a - b).abs()).fold(max_diff, f32::max);
    }
    let ms = now_ms() - t0;
    Ok(RaceLane { device: gpu.adapter.clone(), ms, max_diff })
}
