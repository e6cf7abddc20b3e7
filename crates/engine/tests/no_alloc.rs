//! A training step allocates nothing once the batch size has settled: buffers live in the layers
//! and the trainer. The only allocation a step may make is its chart record (`StepRecord`), taken
//! every step at first and ever more sparsely; steps without one must allocate nothing at all.

use engine::data::images::{ImagePair, ImageSet};
use engine::lab::cnn::{CnnConfig, CnnModel};
use engine::lab::trainer::Trainer;
use engine::loss::Loss;
use engine::rng::Rng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts (per thread, so parallel tests don't mix).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(|n| n.get())
}

#[test]
fn lenet5_training_steps_allocate_nothing_but_their_chart_records() {
    quiet_steps_allocate_nothing(1);
}

#[test]
fn sharded_steps_on_one_worker_allocate_nothing_either() {
    // Eight micro-shards summed over a tree: the gradient buffers are reused.
    quiet_steps_allocate_nothing(8);
}

fn quiet_steps_allocate_nothing(shards: usize) {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let images = ImagePair::load_dir(ImageSet::Mnist, &dir).unwrap();
    let config = CnnConfig::for_model(CnnModel::Lenet5);
    let model = config.build_model(&mut Rng::new(1));
    let mut trainer = Trainer::new(model, config.opt, config.hyper(), Loss::Softmax, config.bs, images.train.len(), Rng::new(2));
    trainer.set_shards(shards);
    let source = images.train_source(images.scaling(true));
    for _ in 0..3 {
        trainer.train_step(&source); // buffers take their shapes
    }
    trainer.set_record_every(4);
    let (mut quiet_steps, mut recorded) = (0, 0);
    for _ in 0..40 {
        let (before, records) = (allocations(), trainer.records.len());
        trainer.train_step(&source);
        let made = allocations() - before;
        if trainer.records.len() == records {
            quiet_steps += 1;
            assert_eq!(made, 0, "a step without a record allocated {made} times");
        } else {
            recorded += 1;
            assert!(made <= 2, "a step with a record allocated {made} times (the record's Vec, maybe the list's growth)");
        }
    }
    assert_eq!((quiet_steps, recorded), (30, 10));
}
