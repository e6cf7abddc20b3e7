//! A throwaway timing probe (fiftieth sitting, issue #15): W2's step — MLP 784-128-10, ReLU,
//! SGD, a mini-batch of 64 in 4 micro-shards of 16, softmax cross-entropy — four ways, in
//! alternating rounds in one process, on random pixels (timing only: no bits are compared):
//!
//! - `one`: one thread, as the sharded step computes it (each shard forward and backward, the
//!   first layer's input kept as the dense layer keeps it, the tree `(g0+g1)+(g2+g3)`, the update);
//! - `columns`: two threads, the first layer split by its output columns (each thread keeps its
//!   64 columns' weights, computes them for all 64 rows, then its columns' weight gradients over
//!   every shard, their tree and update); the lead runs the rest of the network for all 4 shards
//!   in between while the helper waits; each thread gathers the whole batch itself;
//! - `data-parallel`: two replicas, two shards each, each reading the other's 400 KB pair sum to
//!   make the root and the update (the protocol the native threads use, without its streamed
//!   copies and other refinements);
//! - `columns, rest split`: the column split with the rest of the network split by shards as
//!   well (the lead shards 0–1, the helper 2–3; each reads the other's columns of its rows' first
//!   layer outputs, 8 KB, and writes the other's columns of its rows' ∂Z, 8 KB; the small layer's
//!   tree and update on both). Two spin barriers a step.
//!
//! Build and run outside the workspace (`[workspace]` below):
//!   cargo run --release --manifest-path docs/probes/w2-columns/Cargo.toml -- <seconds> <rounds>
//! Shared buffers are handed between the threads by atomics (Release/Acquire) in a fixed order;
//! each buffer is written by one thread at a time, which the barriers order. Probe code only.
use nn::math::PixelTable;
use nn::ops::gemm::{gemm, gemm_tn};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::Instant;

const N: usize = 64;
const S: usize = 4;
const R: usize = 16;
const IN: usize = 784;
const H: usize = 128;
const HH: usize = 64;
const O: usize = 10;
const LR: f32 = 0.1;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

fn gather(images: &[u8], idx: &[usize], table: &PixelTable, out: &mut [f32]) {
    table.fill_rows(idx.len(), IN, |k| &images[idx[k] * IN..(idx[k] + 1) * IN], out);
}

/// Everything after the first layer's pre-activations for one shard: dz (R×H) out.
#[allow(clippy::too_many_arguments)]
fn rest(
    z: &[f32],
    w2: &[f32],
    b2: &[f32],
    labels: &[usize],
    scale: f32,
    h: &mut [f32],
    y: &mut [f32],
    dy: &mut [f32],
    dh: &mut [f32],
    dz: &mut [f32],
    dw2: &mut [f32],
    db2: &mut [f32],
) -> f32 {
    for i in 0..R * H {
        h[i] = z[i].max(0.0);
    }
    for r in 0..R {
        y[r * O..(r + 1) * O].copy_from_slice(b2);
    }
    gemm(R, H, O, h, w2, y, true);
    let mut loss = 0.0;
    for r in 0..R {
        let row = &y[r * O..(r + 1) * O];
        let m = row.iter().cloned().fold(f32::MIN, f32::max);
        let mut e = [0.0f32; O];
        for j in 0..O {
            e[j] = (row[j] - m).exp();
        }
        let s: f32 = e.iter().sum();
        for j in 0..O {
            let p = e[j] / s;
            dy[r * O + j] = (p - if j == labels[r] { 1.0 } else { 0.0 }) * scale / R as f32;
        }
        loss -= (e[labels[r]] / s).ln();
    }
    gemm_tn(H, R, O, h, dy, dw2, false);
    db2.fill(0.0);
    for r in 0..R {
        for j in 0..O {
            db2[j] += dy[r * O + j];
        }
    }
    // dh = dy·W2ᵀ through W2 transposed, as the dense layer does for narrow layers.
    let mut w2t = [0.0f32; O * H];
    nn::ops::gemm::transpose(H, O, w2, &mut w2t);
    gemm(R, O, H, dy, &w2t, dh, false);
    for i in 0..R * H {
        dz[i] = if z[i] > 0.0 { dh[i] } else { 0.0 };
    }
    loss
}

fn tree_update(leaves: &mut [Vec<f32>], w: &mut [f32], grad: &mut [f32]) {
    let (a, rest) = leaves.split_at_mut(1);
    a[0].iter_mut().zip(rest[0].iter()).for_each(|(x, y)| *x += *y);
    let (c, d) = rest[1..].split_at_mut(1);
    c[0].iter_mut().zip(d[0].iter()).for_each(|(x, y)| *x += *y);
    for (((w, g), x), y) in w.iter_mut().zip(grad.iter_mut()).zip(a[0].iter()).zip(c[0].iter()) {
        let s = *x + *y;
        *g = s;
        *w -= LR * s;
    }
}

fn bias_leaf(dz: &[f32], cols: usize, out: &mut [f32]) {
    out.fill(0.0);
    for r in 0..R {
        for j in 0..cols {
            out[j] += dz[r * cols + j];
        }
    }
}

struct Small {
    w2: Vec<f32>,
    b2: Vec<f32>,
    dw2: Vec<Vec<f32>>,
    db2: Vec<Vec<f32>>,
    g2: Vec<f32>,
    gb2: Vec<f32>,
    h: Vec<f32>,
    y: Vec<f32>,
    dy: Vec<f32>,
    dh: Vec<f32>,
}

impl Small {
    fn new(rng: &mut Rng) -> Small {
        Small {
            w2: (0..H * O).map(|_| rng.f() * 0.2).collect(),
            b2: vec![0.0; O],
            dw2: vec![vec![0.0; H * O]; S],
            db2: vec![vec![0.0; O]; S],
            g2: vec![0.0; H * O],
            gb2: vec![0.0; O],
            h: vec![0.0; R * H],
            y: vec![0.0; R * O],
            dy: vec![0.0; R * O],
            dh: vec![0.0; R * H],
        }
    }
    fn update(&mut self) {
        tree_update(&mut self.dw2, &mut self.w2, &mut self.g2);
        tree_update(&mut self.db2, &mut self.b2, &mut self.gb2);
    }
}

struct One {
    w1: Vec<f32>,
    b1: Vec<f32>,
    x: Vec<f32>,
    xc: Vec<f32>,
    z: Vec<f32>,
    dz: Vec<f32>,
    leaves: Vec<Vec<f32>>,
    bleaves: Vec<Vec<f32>>,
    g1: Vec<f32>,
    gb1: Vec<f32>,
    small: Small,
}

fn one_step(m: &mut One, images: &[u8], labels_all: &[u8], idx: &[usize], table: &PixelTable) -> f32 {
    gather(images, idx, table, &mut m.x);
    let labels: Vec<usize> = idx.iter().map(|&i| labels_all[i] as usize).collect();
    let mut loss = 0.0;
    for s in (0..S).rev() {
        let xs = &m.x[s * R * IN..(s + 1) * R * IN];
        m.xc.copy_from_slice(xs); // the Dense layer keeps its input
        for r in 0..R {
            m.z[r * H..(r + 1) * H].copy_from_slice(&m.b1);
        }
        gemm(R, IN, H, xs, &m.w1, &mut m.z, true);
        let sm = &mut m.small;
        loss += rest(
            &m.z,
            &sm.w2,
            &sm.b2,
            &labels[s * R..(s + 1) * R],
            R as f32 / N as f32,
            &mut sm.h,
            &mut sm.y,
            &mut sm.dy,
            &mut sm.dh,
            &mut m.dz,
            &mut sm.dw2[s],
            &mut sm.db2[s],
        );
        gemm_tn(IN, R, H, &m.xc, &m.dz, &mut m.leaves[s], false);
        bias_leaf(&m.dz, H, &mut m.bleaves[s]);
    }
    tree_update(&mut m.leaves, &mut m.w1, &mut m.g1);
    tree_update(&mut m.bleaves, &mut m.b1, &mut m.gb1);
    m.small.update();
    loss
}

/// One thread's half of the first layer (columns), in its own memory.
struct Half {
    w: Vec<f32>,
    b: Vec<f32>,
    x: Vec<f32>,
    z: Vec<f32>,  // N×HH
    dz: Vec<f32>, // N×HH, shard-major (R×HH per shard)
    leaves: Vec<Vec<f32>>,
    bleaves: Vec<Vec<f32>>,
    g: Vec<f32>,
    gb: Vec<f32>,
}

impl Half {
    fn new(rng: &mut Rng) -> Half {
        Half {
            w: (0..IN * HH).map(|_| rng.f() * 0.1).collect(),
            b: vec![0.0; HH],
            x: vec![0.0; N * IN],
            z: vec![0.0; N * HH],
            dz: vec![0.0; N * HH],
            leaves: vec![vec![0.0; IN * HH]; S],
            bleaves: vec![vec![0.0; HH]; S],
            g: vec![0.0; IN * HH],
            gb: vec![0.0; HH],
        }
    }
    fn forward(&mut self) {
        for r in 0..N {
            self.z[r * HH..(r + 1) * HH].copy_from_slice(&self.b);
        }
        gemm(N, IN, HH, &self.x, &self.w, &mut self.z, true);
    }
    fn backward(&mut self) {
        for s in 0..S {
            gemm_tn(IN, R, HH, &self.x[s * R * IN..(s + 1) * R * IN], &self.dz[s * R * HH..(s + 1) * R * HH], &mut self.leaves[s], false);
            bias_leaf(&self.dz[s * R * HH..(s + 1) * R * HH], HH, &mut self.bleaves[s]);
        }
        tree_update(&mut self.leaves, &mut self.w, &mut self.g);
        tree_update(&mut self.bleaves, &mut self.b, &mut self.gb);
    }
}

/// A data-parallel replica: the whole model, two shards a step, its pair sums double-buffered.
struct Rep {
    w1: Vec<f32>,
    b1: Vec<f32>,
    x: Vec<f32>,
    xc: Vec<f32>,
    z: Vec<f32>,
    dz: Vec<f32>,
    leaves: Vec<Vec<f32>>,
    bleaves: Vec<Vec<f32>>,
    pair: [Vec<f32>; 2],
    bpair: [Vec<f32>; 2],
    pair2: [Vec<f32>; 2],
    bpair2: [Vec<f32>; 2],
    g1: Vec<f32>,
    small: Small,
}

impl Rep {
    fn new(w1: &[f32], small_from: &Small, rng: &mut Rng) -> Rep {
        let mut small = Small::new(rng);
        small.w2.copy_from_slice(&small_from.w2);
        Rep {
            w1: w1.to_vec(),
            b1: vec![0.0; H],
            x: vec![0.0; 2 * R * IN],
            xc: vec![0.0; R * IN],
            z: vec![0.0; R * H],
            dz: vec![0.0; R * H],
            leaves: vec![vec![0.0; IN * H]; 2],
            bleaves: vec![vec![0.0; H]; 2],
            pair: [vec![0.0; IN * H], vec![0.0; IN * H]],
            bpair: [vec![0.0; H], vec![0.0; H]],
            pair2: [vec![0.0; H * O], vec![0.0; H * O]],
            bpair2: [vec![0.0; O], vec![0.0; O]],
            g1: vec![0.0; IN * H],
            small,
        }
    }
    /// Shards `first`, `first + 1` of the batch `idx`; their pair sums into buffer `k % 2`.
    fn shards(&mut self, images: &[u8], labels_all: &[u8], idx: &[usize], first: usize, table: &PixelTable, k: usize) -> f32 {
        gather(images, &idx[first * R..(first + 2) * R], table, &mut self.x);
        let labels: Vec<usize> = idx.iter().map(|&i| labels_all[i] as usize).collect();
        let mut loss = 0.0;
        for j in (0..2).rev() {
            let s = first + j;
            let xs = &self.x[j * R * IN..(j + 1) * R * IN];
            self.xc.copy_from_slice(xs);
            for r in 0..R {
                self.z[r * H..(r + 1) * H].copy_from_slice(&self.b1);
            }
            gemm(R, IN, H, xs, &self.w1, &mut self.z, true);
            let sm = &mut self.small;
            loss += rest(
                &self.z,
                &sm.w2,
                &sm.b2,
                &labels[s * R..(s + 1) * R],
                R as f32 / N as f32,
                &mut sm.h,
                &mut sm.y,
                &mut sm.dy,
                &mut sm.dh,
                &mut self.dz,
                &mut sm.dw2[j],
                &mut sm.db2[j],
            );
            gemm_tn(IN, R, H, &self.xc, &self.dz, &mut self.leaves[j], false);
            bias_leaf(&self.dz, H, &mut self.bleaves[j]);
        }
        let b = k % 2;
        let add = |o: &mut [f32], a: &[f32], c: &[f32]| o.iter_mut().zip(a.iter().zip(c.iter())).for_each(|(o, (a, c))| *o = *a + *c);
        add(&mut self.pair[b], &self.leaves[0], &self.leaves[1]);
        add(&mut self.bpair[b], &self.bleaves[0], &self.bleaves[1]);
        add(&mut self.pair2[b], &self.small.dw2[0], &self.small.dw2[1]);
        add(&mut self.bpair2[b], &self.small.db2[0], &self.small.db2[1]);
        loss
    }
    /// The root (left + right) and the update on this replica.
    fn root(&mut self, other: &Rep, self_left: bool, k: usize) {
        let b = k % 2;
        fn upd(w: &mut [f32], g: Option<&mut [f32]>, a: &[f32], c: &[f32]) {
            match g {
                Some(g) => w.iter_mut().zip(g.iter_mut()).zip(a.iter().zip(c.iter())).for_each(|((w, g), (a, c))| {
                    let s = *a + *c;
                    *g = s;
                    *w -= LR * s;
                }),
                None => w.iter_mut().zip(a.iter().zip(c.iter())).for_each(|(w, (a, c))| *w -= LR * (*a + *c)),
            }
        }
        macro_rules! go {
            ($w:expr, $g:expr, $mine:expr, $theirs:expr) => {{
                let (l, r): (&[f32], &[f32]) = if self_left { (&$mine, &$theirs) } else { (&$theirs, &$mine) };
                upd($w, $g, l, r);
            }};
        }
        go!(&mut self.w1, Some(&mut self.g1), self.pair[b], other.pair[b]);
        go!(&mut self.b1, None, self.bpair[b], other.bpair[b]);
        go!(&mut self.small.w2, None, self.pair2[b], other.pair2[b]);
        go!(&mut self.small.b2, None, self.bpair2[b], other.bpair2[b]);
    }
}

/// The column split with the rest of the network split by shards too: worker `me` (0 the lead)
/// computes its columns of the first layer for all rows, the rest for its two shards, then its
/// columns' weight gradients over all shards; the small layer's tree and update on both.
#[allow(clippy::too_many_arguments)]
unsafe fn hybrid(
    me: usize,
    k: usize,
    sh: &Shared,
    images: &[u8],
    labels_all: &[u8],
    batches: &[Vec<usize>],
    table: &PixelTable,
    zfull: &mut [f32],
    dzfull: &mut [f32],
) -> f32 {
    let half = &mut *sh.halves[me].get();
    half.forward();
    sh.zready[me].store(k + 1, Release);
    spin_until(&sh.zready[1 - me], k + 1);
    let other = sh.halves[1 - me].get();
    let sm = &mut *sh.smalls[me].get();
    let idx = &batches[k % batches.len()];
    let labels: Vec<usize> = idx.iter().map(|&i| labels_all[i] as usize).collect();
    let (zl, zr): (*const f32, *const f32) = if me == 0 { (half.z.as_ptr(), (*other).z.as_ptr()) } else { ((*other).z.as_ptr(), half.z.as_ptr()) };
    let (dl, dr): (*mut f32, *mut f32) =
        if me == 0 { (half.dz.as_mut_ptr(), (*other).dz.as_mut_ptr()) } else { ((*other).dz.as_mut_ptr(), half.dz.as_mut_ptr()) };
    let mut loss = 0.0;
    for j in (0..2).rev() {
        let s = 2 * me + j;
        for r in 0..R {
            let row = s * R + r;
            zfull[r * H..r * H + HH].copy_from_slice(std::slice::from_raw_parts(zl.add(row * HH), HH));
            zfull[r * H + HH..(r + 1) * H].copy_from_slice(std::slice::from_raw_parts(zr.add(row * HH), HH));
        }
        loss += rest(
            zfull,
            &sm.w2,
            &sm.b2,
            &labels[s * R..(s + 1) * R],
            R as f32 / N as f32,
            &mut sm.h,
            &mut sm.y,
            &mut sm.dy,
            &mut sm.dh,
            dzfull,
            &mut sm.dw2[s],
            &mut sm.db2[s],
        );
        for r in 0..R {
            let row = s * R + r;
            std::slice::from_raw_parts_mut(dl.add(row * HH), HH).copy_from_slice(&dzfull[r * H..r * H + HH]);
            std::slice::from_raw_parts_mut(dr.add(row * HH), HH).copy_from_slice(&dzfull[r * H + HH..(r + 1) * H]);
        }
    }
    sh.restready[me].store(k + 1, Release);
    spin_until(&sh.restready[1 - me], k + 1);
    half.backward();
    // The small layer: ((l0 + l1) + (l2 + l3)), l0 and l1 the lead's, l2 and l3 the helper's.
    let (a, b) = (&*sh.smalls[0].get(), &*sh.smalls[1].get());
    let sm = &mut *sh.smalls[me].get();
    for i in 0..H * O {
        let g = (a.dw2[0][i] + a.dw2[1][i]) + (b.dw2[2][i] + b.dw2[3][i]);
        sm.g2[i] = g;
        sm.w2[i] -= LR * g;
    }
    for i in 0..O {
        let g = (a.db2[0][i] + a.db2[1][i]) + (b.db2[2][i] + b.db2[3][i]);
        sm.b2[i] -= LR * g;
    }
    let next = &batches[(k + 1) % batches.len()];
    gather(images, next, table, &mut half.x);
    loss
}

struct Shared {
    halves: [UnsafeCell<Half>; 2],
    smalls: [UnsafeCell<Small>; 2],
    zready: [AtomicUsize; 2],
    restready: [AtomicUsize; 2],
    /// The helper's batch indices for the next gather.
    next: UnsafeCell<Vec<usize>>,
    reps: [UnsafeCell<Rep>; 2],
    /// Data-parallel: each worker's pair sums of step k are ready (k + 1).
    pairs: [AtomicUsize; 2],
    phase: AtomicUsize,
    done: AtomicUsize,
    cmds: [AtomicUsize; 16],
}
unsafe impl Sync for Shared {}

fn spin_until(a: &AtomicUsize, v: usize) {
    let t = Instant::now();
    while a.load(Acquire) < v {
        if t.elapsed().as_micros() > 300 {
            std::thread::sleep(std::time::Duration::from_micros(100));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The premise of the column split: a column block of a product is computed with the same bits as
/// the same columns of the whole product (every element summed over k in the same order).
fn check_column_bits(rng: &mut Rng) -> bool {
    let x: Vec<f32> = (0..N * IN).map(|_| rng.f()).collect();
    let w: Vec<f32> = (0..IN * H).map(|_| rng.f()).collect();
    let dz: Vec<f32> = (0..R * H).map(|_| rng.f()).collect();
    let mut z = vec![0.0f32; N * H];
    gemm(N, IN, H, &x, &w, &mut z, false);
    let mut dw = vec![0.0f32; IN * H];
    gemm_tn(IN, R, H, &x[..R * IN], &dz, &mut dw, false);
    let mut same = true;
    for c in 0..2 {
        let block = |m: &[f32], rows: usize| -> Vec<f32> { (0..rows).flat_map(|r| m[r * H + c * HH..r * H + (c + 1) * HH].to_vec()).collect() };
        let wc = block(&w, IN);
        let mut zc = vec![0.0f32; N * HH];
        gemm(N, IN, HH, &x, &wc, &mut zc, false);
        let dzc = block(&dz, R);
        let mut dwc = vec![0.0f32; IN * HH];
        gemm_tn(IN, R, HH, &x[..R * IN], &dzc, &mut dwc, false);
        same &= block(&z, N).iter().zip(&zc).all(|(a, b)| a.to_bits() == b.to_bits());
        same &= block(&dw, IN).iter().zip(&dwc).all(|(a, b)| a.to_bits() == b.to_bits());
    }
    same
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
    let mut rng = Rng(0x9e3779b97f4a7c15);
    println!("column blocks of the products give the whole products' bits: {}", check_column_bits(&mut rng));
    let count = 60000;
    let images: Arc<Vec<u8>> = Arc::new((0..count * IN).map(|_| if rng.next() % 5 == 0 { (rng.next() % 256) as u8 } else { 0 }).collect());
    let labels: Vec<u8> = (0..count).map(|_| (rng.next() % 10) as u8).collect();
    let table = PixelTable::new((0.1307, 0.3081));
    let batches: Vec<Vec<usize>> = (0..4096).map(|_| (0..N).map(|_| (rng.next() % count as u64) as usize).collect()).collect();

    let mut one = One {
        w1: (0..IN * H).map(|_| rng.f() * 0.1).collect(),
        b1: vec![0.0; H],
        x: vec![0.0; N * IN],
        xc: vec![0.0; R * IN],
        z: vec![0.0; R * H],
        dz: vec![0.0; R * H],
        leaves: vec![vec![0.0; IN * H]; S],
        bleaves: vec![vec![0.0; H]; S],
        g1: vec![0.0; IN * H],
        gb1: vec![0.0; H],
        small: Small::new(&mut rng),
    };

    // The two-thread column split.
    let rep0 = Rep::new(&one.w1, &one.small, &mut rng);
    let rep1 = Rep::new(&one.w1, &one.small, &mut rng);
    let shared = Arc::new(Shared {
        halves: [UnsafeCell::new(Half::new(&mut rng)), UnsafeCell::new(Half::new(&mut rng))],
        smalls: [UnsafeCell::new(Small::new(&mut Rng(7))), UnsafeCell::new(Small::new(&mut Rng(7)))],
        zready: [AtomicUsize::new(0), AtomicUsize::new(0)],
        restready: [AtomicUsize::new(0), AtomicUsize::new(0)],
        next: UnsafeCell::new(vec![0; N]),
        reps: [UnsafeCell::new(rep0), UnsafeCell::new(rep1)],
        pairs: [AtomicUsize::new(0), AtomicUsize::new(0)],
        phase: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        cmds: std::array::from_fn(|_| AtomicUsize::new(0)),
    });
    let labels_h = labels.clone();
    let batches_h = batches.clone();
    let mut small = Small::new(&mut rng);
    let helper = {
        let sh = shared.clone();
        let images = images.clone();
        let table = PixelTable::new((0.1307, 0.3081));
        std::thread::spawn(move || {
            let mut seen = 0usize;
            let (mut hz, mut hdz) = (vec![0.0f32; R * H], vec![0.0f32; R * H]);
            loop {
                spin_until(&sh.phase, seen + 1);
                seen += 1;
                let cmd = sh.cmds[seen % 16].load(Acquire);
                match cmd & 7 {
                    0 => return,
                    1 => unsafe { &mut *sh.halves[1].get() }.forward(),
                    2 => {
                        let me = unsafe { &mut *sh.halves[1].get() };
                        me.backward();
                        let idx = unsafe { &*sh.next.get() };
                        gather(&images, idx, &table, &mut me.x);
                    }
                    4 => {
                        let k = cmd >> 3;
                        unsafe { hybrid(1, k, &sh, &images, &labels_h, &batches_h, &table, &mut hz, &mut hdz) };
                    }
                    _ => {
                        let k = cmd >> 3;
                        let me = unsafe { &mut *sh.reps[1].get() };
                        me.shards(&images, &labels_h, &batches_h[k % batches_h.len()], 2, &table, k);
                        sh.pairs[1].store(k + 1, Release);
                        spin_until(&sh.pairs[0], k + 1);
                        let other = unsafe { &*sh.reps[0].get() };
                        let me = unsafe { &mut *sh.reps[1].get() };
                        me.root(other, false, k);
                    }
                }
                sh.done.store(seen, Release);
            }
        })
    };
    let cmdn = std::cell::Cell::new(0usize);
    let tm: std::cell::RefCell<[f64; 7]> = std::cell::RefCell::new([0.0; 7]);
    let mut zfull = vec![0.0f32; R * H];
    let mut dzfull = vec![0.0f32; R * H];
    let mut col_step = |b: usize| -> f32 {
        let idx = &batches[b % batches.len()];
        let nidx = &batches[(b + 1) % batches.len()];
        let lead = unsafe { &mut *shared.halves[0].get() };
        if b == 1 {
            gather(&images, idx, &table, &mut lead.x);
            let hx = unsafe { &mut *shared.halves[1].get() };
            gather(&images, idx, &table, &mut hx.x);
        }
        // Fork A.
        let p = cmdn.get() + 1;
        cmdn.set(p);
        shared.cmds[p % 16].store(1, Release);
        shared.phase.store(p, Release);
        let t0 = Instant::now();
        lead.forward();
        let t1 = Instant::now();
        spin_until(&shared.done, p);
        let t2 = Instant::now();
        let other = unsafe { &mut *shared.halves[1].get() };
        let lbl: Vec<usize> = idx.iter().map(|&i| labels[i] as usize).collect();
        let mut loss = 0.0;
        for s in (0..S).rev() {
            for r in 0..R {
                let row = s * R + r;
                zfull[r * H..r * H + HH].copy_from_slice(&lead.z[row * HH..(row + 1) * HH]);
                zfull[r * H + HH..(r + 1) * H].copy_from_slice(&other.z[row * HH..(row + 1) * HH]);
            }
            loss += rest(
                &zfull,
                &small.w2,
                &small.b2,
                &lbl[s * R..(s + 1) * R],
                R as f32 / N as f32,
                &mut small.h,
                &mut small.y,
                &mut small.dy,
                &mut small.dh,
                &mut dzfull,
                &mut small.dw2[s],
                &mut small.db2[s],
            );
            for r in 0..R {
                lead.dz[(s * R + r) * HH..(s * R + r + 1) * HH].copy_from_slice(&dzfull[r * H..r * H + HH]);
                other.dz[(s * R + r) * HH..(s * R + r + 1) * HH].copy_from_slice(&dzfull[r * H + HH..(r + 1) * H]);
            }
        }
        unsafe { (*shared.next.get()).copy_from_slice(nidx) };
        let t3 = Instant::now();
        // Fork B.
        let p = cmdn.get() + 1;
        cmdn.set(p);
        shared.cmds[p % 16].store(2, Release);
        shared.phase.store(p, Release);
        small.update();
        lead.backward();
        let t4 = Instant::now();
        gather(&images, nidx, &table, &mut lead.x);
        let t5 = Instant::now();
        spin_until(&shared.done, p);
        let t6 = Instant::now();
        {
            let mut t = tm.borrow_mut();
            for (i, d) in [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5].iter().enumerate() {
                t[i] += d.as_secs_f64() * 1e6;
            }
            t[6] += 1.0;
        }
        loss
    };

    let run = |f: &mut dyn FnMut(usize) -> f32, secs: f64| -> f64 {
        let t = Instant::now();
        let mut steps = 0usize;
        let mut sink = 0.0;
        while t.elapsed().as_secs_f64() < secs {
            for _ in 0..64 {
                sink += f(steps);
                steps += 1;
            }
        }
        std::hint::black_box(sink);
        steps as f64 * N as f64 / t.elapsed().as_secs_f64()
    };
    let mut b1 = 0usize;
    let mut onef = |_: usize| -> f32 {
        b1 += 1;
        one_step(&mut one, &images, &labels, &batches[b1 % batches.len()], &table)
    };
    let mut b2 = 0usize;
    let mut colf = |_: usize| -> f32 {
        b2 += 1;
        col_step(b2)
    };
    let mut hk = 0usize;
    let (mut lz, mut ldz) = (vec![0.0f32; R * H], vec![0.0f32; R * H]);
    let mut hybf = |_: usize| -> f32 {
        if hk == 0 {
            unsafe {
                gather(&images, &batches[0], &table, &mut (*shared.halves[0].get()).x);
                gather(&images, &batches[0], &table, &mut (*shared.halves[1].get()).x);
            }
        }
        let p = cmdn.get() + 1;
        cmdn.set(p);
        shared.cmds[p % 16].store(4 | (hk << 3), Release);
        shared.phase.store(p, Release);
        let loss = unsafe { hybrid(0, hk, &shared, &images, &labels, &batches, &table, &mut lz, &mut ldz) };
        hk += 1;
        loss
    };
    let mut d = 0usize;
    let mut dpf = |_: usize| -> f32 {
        d += 1;
        let p = cmdn.get() + 1;
        cmdn.set(p);
        shared.cmds[p % 16].store(3 | (d << 3), Release);
        shared.phase.store(p, Release);
        let me = unsafe { &mut *shared.reps[0].get() };
        let loss = me.shards(&images, &labels, &batches[d % batches.len()], 0, &table, d);
        shared.pairs[0].store(d + 1, Release);
        spin_until(&shared.pairs[1], d + 1);
        let other = unsafe { &*shared.reps[1].get() };
        me.root(other, true, d);
        loss
    };
    let sync = |cmdn: &std::cell::Cell<usize>| spin_until(&shared.done, cmdn.get());
    run(&mut onef, 1.0);
    run(&mut colf, 1.0);
    run(&mut dpf, 1.0);
    sync(&cmdn);
    run(&mut hybf, 1.0);
    sync(&cmdn);
    let (mut s1, mut s2, mut s3, mut s4) = (0.0, 0.0, 0.0, 0.0);
    for r in 0..rounds {
        let a = run(&mut onef, secs);
        let c = run(&mut colf, secs);
        let e = run(&mut dpf, secs);
        sync(&cmdn);
        let f = run(&mut hybf, secs);
        sync(&cmdn);
        s1 += a;
        s2 += c;
        s3 += e;
        s4 += f;
        println!("round {}: one {:.0} ({:.0} us) | columns {:.0} ({:.0} us) {:.3}x | data-parallel {:.0} ({:.0} us) {:.3}x | columns, rest split {:.0} ({:.0} us) {:.3}x", r + 1, a, 64e6 / a, c, 64e6 / c, c / a, e, 64e6 / e, e / a, f, 64e6 / f, f / a);
    }
    let n = rounds as f64;
    {
        let t = tm.borrow();
        let c = t[6];
        println!(
            "column step on the lead, us: forward {:.0}, wait {:.0}, rest {:.0}, small update + backward {:.0}, gather {:.0}, wait {:.0}",
            t[0] / c,
            t[1] / c,
            t[2] / c,
            t[3] / c,
            t[4] / c,
            t[5] / c
        );
    }
    println!(
        "mean: one {:.0} | columns {:.0} {:.3}x | data-parallel {:.0} {:.3}x | columns, rest split {:.0} {:.3}x",
        s1 / n,
        s2 / n,
        s2 / s1,
        s3 / n,
        s3 / s1,
        s4 / n,
        s4 / s1
    );
    let p = cmdn.get() + 1;
    shared.cmds[p % 16].store(0, Release);
    shared.phase.store(p, Release);
    helper.join().unwrap();
}
