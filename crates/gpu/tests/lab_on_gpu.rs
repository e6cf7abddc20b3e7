//! A lab session whose steps run on the GPU (lavapipe here): the CNN lab trains the same run as
//! on the CPU within the stated tolerance, its snapshots fill from readbacks, a smaller last
//! batch and a changed batch size work, the backend switches both ways keeping the weights, and
//! what the GPU can't run is refused with a message.

use engine::data::images::{Assets, ImagePair, ImageSet};
use engine::lab::{self, parse_link, LabSession};
use gpu::{Gpu, GpuAccelerator};

fn gpu() -> Gpu {
    Gpu::new_blocking().expect("a Vulkan adapter (lavapipe: apt install mesa-vulkan-drivers)")
}

fn assets() -> Assets {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut a = Assets::default();
    a.insert(ImagePair::load_dir(ImageSet::Mnist, &dir).expect("static/data ships MNIST"));
    a
}

fn session(link: &str, assets: &Assets) -> Box<dyn LabSession> {
    lab::build_with(&parse_link(link).config, assets).expect("a valid link")
}

fn accelerate(s: &mut dyn LabSession, g: &Gpu) -> Result<(), String> {
    s.accelerate(&mut |t, input| GpuAccelerator::new(g, t, input).map(|a| Box::new(a) as Box<dyn lab::Accelerator>))
}

/// Steps until `steps` are taken (the GPU may hold steps back; natively it blocks instead).
fn train_to(s: &mut dyn LabSession, steps: u64) {
    for _ in 0..100_000 {
        if s.steps() >= steps {
            return;
        }
        s.step(1);
    }
    panic!("stuck at step {}", s.steps());
}

fn settle(s: &mut dyn LabSession) {
    for _ in 0..100 {
        if s.sync(true) {
            return;
        }
    }
    panic!("never in sync");
}

fn losses(s: &mut dyn LabSession) -> Vec<(u64, f32)> {
    s.snapshot().records.iter().map(|r| (r.step, r.loss)).collect()
}

fn worst_relative(a: &[(u64, f32)], b: &[(u64, f32)]) -> f32 {
    assert_eq!(a.iter().map(|r| r.0).collect::<Vec<_>>(), b.iter().map(|r| r.0).collect::<Vec<_>>(), "the same steps recorded");
    a.iter().zip(b).map(|(x, y)| (x.1 - y.1).abs() / x.1.abs().max(1e-3)).fold(0.0, f32::max)
}

const LINK: &str = "lab=cnn&model=lenet5&bs=16&seed=3&eval=40";

#[test]
fn the_cnn_lab_trains_on_the_gpu_to_the_cpu_s_losses_and_accuracy() {
    let (g, assets) = (gpu(), assets());
    let mut cpu = session(LINK, &assets);
    let mut on_gpu = session(LINK, &assets);
    accelerate(on_gpu.as_mut(), &g).expect("LeNet-5 runs on the GPU");
    assert!(on_gpu.accelerator().is_some_and(|name| !name.is_empty()));
    train_to(cpu.as_mut(), 60);
    train_to(on_gpu.as_mut(), 60);
    cpu.finish();
    settle(on_gpu.as_mut());
    on_gpu.finish();
    let (a, b) = (losses(cpu.as_mut()), losses(on_gpu.as_mut()));
    assert_eq!(a.len(), 60, "every step recorded");
    let worst = worst_relative(&a, &b);
    eprintln!("CNN lab, 60 steps on lavapipe: largest relative loss difference {worst:e}");
    assert!(worst <= 1e-3, "{worst}");
    let accuracy = |s: &mut dyn LabSession| s.snapshot().metrics.iter().find(|m| m.name == "test_accuracy").map(|m| m.value).expect("a test accuracy");
    let (ca, ga) = (accuracy(cpu.as_mut()), accuracy(on_gpu.as_mut()));
    assert!((ca - ga).abs() <= 0.01, "test accuracy {ca} on the CPU, {ga} on the GPU");
    assert!(ga > 0.3, "it learned: {ga}");
}

#[test]
fn switching_backends_mid_run_keeps_the_weights() {
    // Plain SGD has no optimiser state, so CPU → GPU → CPU continues the CPU-only run.
    let link = "lab=cnn&model=lenet5&bs=16&seed=4&opt=sgd&lr=0.05&eval=1000";
    let (g, assets) = (gpu(), assets());
    let mut reference = session(link, &assets);
    train_to(reference.as_mut(), 45);
    let mut s = session(link, &assets);
    train_to(s.as_mut(), 15);
    accelerate(s.as_mut(), &g).unwrap();
    train_to(s.as_mut(), 30);
    settle(s.as_mut());
    s.decelerate();
    assert!(s.accelerator().is_none());
    train_to(s.as_mut(), 45);
    let worst = worst_relative(&losses(reference.as_mut()), &losses(s.as_mut()));
    assert!(worst <= 1e-3, "{worst}");
}

#[test]
fn a_smaller_last_batch_and_a_new_batch_size_run_on_the_gpu() {
    // 1024 images a batch: an epoch ends with a smaller batch when the training set's size is not
    // a multiple of 1024 — stepping past an epoch exercises it. Then bs and opt mid-run. The
    // training set is cut to its first 3,000 images (an epoch of 60,000 on lavapipe and on the
    // CPU took 100 s of CI time for the same check).
    let g = gpu();
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut mnist = ImagePair::load_dir(ImageSet::Mnist, &dir).expect("static/data ships MNIST");
    let pixels = mnist.train.rows * mnist.train.cols;
    mnist.train.images.truncate(3000 * pixels);
    mnist.train.labels.truncate(3000);
    let mut assets = Assets::default();
    assets.insert(mnist);
    let n = assets.get(ImageSet::Mnist).unwrap().train.len() as u64;
    assert_eq!(n, 3000);
    let link = "lab=cnn&model=small&bs=1024&seed=5&opt=sgd&lr=0.05&eval=5000";
    let mut cpu = session(link, &assets);
    let mut s = session(link, &assets);
    accelerate(s.as_mut(), &g).unwrap();
    let steps = n.div_ceil(1024) + 2;
    train_to(cpu.as_mut(), steps);
    train_to(s.as_mut(), steps);
    settle(s.as_mut());
    let (a, b) = (losses(cpu.as_mut()), losses(s.as_mut()));
    let worst = worst_relative(&a, &b);
    assert!(worst <= 1e-3, "past an epoch's smaller last batch: {worst}");
    assert!(n % 1024 != 0, "the set ends an epoch with a smaller batch");
    assert!(s.set("bs", "1000").is_ok());
    assert!(!s.needs_rebuild(), "a smaller batch runs on the same GPU net");
    train_to(s.as_mut(), steps + 1);
    assert!(s.set("opt", "momentum").is_ok());
    s.step(1);
    assert!(s.needs_rebuild(), "another optimiser needs a new GPU net");
    let before = s.steps();
    s.step(1);
    assert_eq!(s.steps(), before, "the run waits for it");
    settle(s.as_mut());
    accelerate(s.as_mut(), &g).unwrap();
    train_to(s.as_mut(), before + 2);
    assert!(!s.needs_rebuild());
}

#[test]
fn what_the_gpu_cannot_run_is_refused_with_a_message_and_the_run_stays_on_the_cpu() {
    let (g, assets) = (gpu(), assets());
    let mut s = session(LINK, &assets);
    accelerate(s.as_mut(), &g).unwrap();
    train_to(s.as_mut(), 5);
    assert!(s.set("opt", "adagrad").is_ok());
    s.step(1);
    assert!(s.needs_rebuild());
    settle(s.as_mut());
    let refusal = accelerate(s.as_mut(), &g).expect_err("Adagrad is not on the GPU");
    assert!(refusal.contains("Adagrad"), "{refusal}");
    s.decelerate();
    train_to(s.as_mut(), 10);
    let fit = session("lab=fit", &assets);
    let mut fit = fit;
    let why = accelerate(fit.as_mut(), &g).expect_err("the fit lab trains on the CPU");
    assert!(why.contains("CPU"), "{why}");
}

#[test]
fn the_race_gains_a_gpu_lane_on_the_same_mini_batch() {
    let (g, assets) = (gpu(), assets());
    let mut s = session("lab=cnn&model=lenet5&bs=16&seed=3&race=false", &assets);
    train_to(s.as_mut(), 3);
    let start = std::time::Instant::now();
    let mut clock = || start.elapsed().as_secs_f64() * 1000.0;
    s.command(lab::LabCommand::Cnn(engine::lab::cnn::CnnCommand::Race), &mut clock).unwrap();
    let probe = s.take_race_probe().expect("a race leaves its mini-batch for a GPU lane");
    assert_eq!(probe.layers.len(), 2, "LeNet-5's two conv layers");
    assert!(s.take_race_probe().is_none(), "taken once");
    let lane = pollster::block_on(gpu::race::lane(&g, &probe, &mut clock)).unwrap();
    assert!(lane.ms > 0.0 && !lane.device.is_empty());
    assert!(lane.max_diff < 1e-3, "GPU vs im2col outputs: {}", lane.max_diff);
    s.set_race_lane(lane.clone());
    let engine::lab::View::Cnn(view) = s.snapshot().view else { panic!("a CNN view") };
    assert_eq!(view.race.expect("a race").gpu, Some(lane));
}
