//! The backprop view: its numbers equal a backward pass written out by hand (plain loops, f64) on
//! the same mini-batch and weights; tracing changes nothing about training; refusals name why.

use engine::data::images::Assets;
use engine::lab::fit::FitLab;
use engine::lab::playground::PlaygroundLab;
use engine::lab::vjp::VjpView;
use engine::lab::{parse_link, Lab, LabConfig, LabSession};
use engine::ops::Dense;
use engine::tensor;

fn fit_lab(link: &str) -> FitLab {
    let LabConfig::Fit(c) = parse_link(link).config else { panic!("a fit link") };
    FitLab::new(c, &Assets::default()).unwrap()
}

fn close(a: f32, b: f64, what: &str) {
    let tol = 1e-5 * b.abs().max(1e-3);
    assert!((a as f64 - b).abs() <= tol, "{what}: view {a}, by hand {b}");
}

fn close_all(a: &[f32], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        close(x, y, &format!("{what}[{i}]"));
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// `(rows, cols)` row-major matrices in f64.
struct M {
    r: usize,
    c: usize,
    v: Vec<f64>,
}

impl M {
    fn mul(&self, o: &M) -> M {
        let mut v = vec![0.0; self.r * o.c];
        for i in 0..self.r {
            for k in 0..self.c {
                for j in 0..o.c {
                    v[i * o.c + j] += self.v[i * self.c + k] * o.v[k * o.c + j];
                }
            }
        }
        M { r: self.r, c: o.c, v }
    }
    fn t(&self) -> M {
        let mut v = vec![0.0; self.r * self.c];
        for i in 0..self.r {
            for j in 0..self.c {
                v[j * self.r + i] = self.v[i * self.c + j];
            }
        }
        M { r: self.c, c: self.r, v }
    }
    fn row(&self, i: usize) -> Vec<f64> {
        self.v[i * self.c..(i + 1) * self.c].to_vec()
    }
}

/// Forward and backward of a tanh MLP with MSE, by hand: per layer `(x, dy, dx, dW, db)`.
fn by_hand(lab: &FitLab) -> (f64, Vec<(M, M, M, M, Vec<f64>)>) {
    let t = lab.trainer();
    let x = t.gathered_batch_x().expect("a fit lab gathers its whole batch");
    let n = x.shape()[0];
    let dense: Vec<&Dense> = t.model.layers_of::<Dense>().collect();
    let mut input = M { r: n, c: x.shape()[1], v: tensor::slice(x).iter().map(|&a| a as f64).collect() };
    let mut acts = Vec::new();
    for (i, d) in dense.iter().enumerate() {
        let w = M { r: d.inputs, c: d.outputs, v: tensor::slice(&d.w).iter().map(|&a| a as f64).collect() };
        let mut z = input.mul(&w);
        for r in 0..n {
            for j in 0..d.outputs {
                z.v[r * d.outputs + j] += tensor::slice(&d.b)[j] as f64;
            }
        }
        let last = i == dense.len() - 1;
        let y = if last { M { r: n, c: z.c, v: z.v.clone() } } else { M { r: n, c: z.c, v: z.v.iter().map(|a| a.tanh()).collect() } };
        acts.push((input, w, z, last));
        input = y;
    }
    let target: Vec<f64> = tensor::slice(t.batch_y()).iter().map(|&a| a as f64).collect();
    let count = input.v.len() as f64;
    let loss = input.v.iter().zip(&target).map(|(p, t)| (p - t) * (p - t)).sum::<f64>() / count;
    let mut dy = M { r: n, c: input.c, v: input.v.iter().zip(&target).map(|(p, t)| 2.0 * (p - t) / count).collect() };
    let mut out = Vec::new();
    for (x, w, z, last) in acts.into_iter().rev() {
        // Through the activation first (dz = dy ⊙ tanh′(z)), then the dense layer.
        let dz = if last {
            M { r: n, c: dy.c, v: dy.v.clone() }
        } else {
            M { r: n, c: dy.c, v: dy.v.iter().zip(&z.v).map(|(g, z)| g * (1.0 - z.tanh().powi(2))).collect() }
        };
        let dx = dz.mul(&w.t());
        let dw = x.t().mul(&dz);
        let db: Vec<f64> = (0..dz.c).map(|j| (0..n).map(|r| dz.v[r * dz.c + j]).sum()).collect();
        out.push((x, dz, M { r: dx.r, c: dx.c, v: dx.v.clone() }, dw, db));
        dy = dx;
    }
    out.reverse();
    (loss, out)
}

#[test]
fn the_view_equals_backprop_by_hand() {
    let mut lab = fit_lab("lab=fit&hidden=6,5&act=tanh&bs=8&lr=0.05&noise=0.1");
    lab.train(37);
    let view: VjpView = lab.trace(3).unwrap();
    assert_eq!((view.step, view.batch, view.example), (37, 8, 3));
    assert!(view.loss_rule.contains("dŷ = 2(ŷ − t)/N"), "{}", view.loss_rule);
    let (loss, layers) = by_hand(&lab);
    close(view.loss, loss, "loss");
    // dense, tanh, dense, tanh, dense
    assert_eq!(view.layers.len(), 5);
    for (k, (x, dz, dx, dw, db)) in layers.iter().enumerate() {
        let v = &view.layers[2 * k];
        assert!(v.name.starts_with("dense"), "{}", v.name);
        assert_eq!(v.rules, ["dx = dy·Wᵀ", "dW = xᵀ·dy", "db = Σ_rows dy"]);
        assert_eq!(v.input, [8, x.c]);
        close(v.x_norm, norm(&x.v), "‖x‖");
        close(v.dy_norm, norm(&dz.v), "‖dy‖");
        close(v.dx_norm, norm(&dx.v), "‖dx‖ (= ‖dy·Wᵀ‖)");
        assert_eq!(v.grad_norms[0].0, "dW");
        close(v.grad_norms[0].1, norm(&dw.v), "‖dW‖ (= ‖xᵀ·dy‖)");
        close(v.grad_norms[1].1, norm(db), "‖db‖");
        close_all(&v.x, &x.row(3), "x of example 3");
        close_all(&v.dy, &dz.row(3), "dy of example 3");
        close_all(&v.dx, &dx.row(3), "dx of example 3");
        close(v.example_grad_norm.unwrap(), norm(&x.row(3)) * norm(&dz.row(3)), "‖xᵢᵀ·dyᵢ‖");
        if k + 1 < layers.len() {
            // The activation between: its dx is the next dense layer's dy, dy ⊙ tanh′(z).
            let a = &view.layers[2 * k + 1];
            assert_eq!(a.rules, ["dx = dy ⊙ tanh′(z)"]);
            close_all(&a.dx, &dz.row(3), "activation dx = this dense layer's dy");
            close_all(&a.dy, &layers[k + 1].2.row(3), "activation dy = the next dense layer's dx");
        }
    }
}

#[test]
fn tracing_leaves_training_untouched() {
    let link = "lab=playground&data=spiral&hidden=6,4&dropout=0.2&bs=10";
    let run = |trace: bool| {
        let mut s = engine::lab::build(&parse_link(link).config);
        let mut bits = Vec::new();
        for _ in 0..30 {
            s.step(3);
            if trace {
                let v = s.trace(0).unwrap();
                assert_eq!(v.step, s.steps());
            }
            bits.push(s.last_loss().to_bits());
        }
        (bits, s.export_run().unwrap())
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn a_classifier_starts_the_chain_at_its_loss() {
    let LabConfig::Playground(c) = parse_link("lab=playground&data=spiral3&hidden=5").config else { panic!() };
    let mut lab = PlaygroundLab::new(c, &Assets::default()).unwrap();
    lab.train(5);
    let v = lab.trace(0).unwrap();
    assert!(v.loss_rule.contains("softmax"), "{}", v.loss_rule);
    let last = v.layers.last().unwrap();
    // dz = (softmax(z) − onehot)/n: each row sums to 0, and the target's entry is the negative one.
    assert!(last.dy.iter().sum::<f32>().abs() < 1e-6);
    assert!(last.dy[v.target[0] as usize] < 0.0);
}

#[test]
fn refusals_say_why() {
    let mut s = engine::lab::build(&parse_link("lab=fit").config);
    assert!(s.trace(0).unwrap_err().contains("train a step first"));
    s.step(1);
    let bs = s.trace(0).unwrap().batch;
    assert!(s.trace(bs).unwrap_err().contains("not in the batch"));
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut assets = Assets::default();
    assets.insert(engine::data::images::ImagePair::load_dir(engine::data::images::ImageSet::Mnist, &dir).unwrap());
    let mut cnn: Box<dyn LabSession> = engine::lab::build_with(&parse_link("lab=cnn").config, &assets).unwrap();
    cnn.step(1);
    assert!(cnn.trace(0).unwrap_err().contains("fit and playground"));
}
