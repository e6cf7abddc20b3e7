//! "What a layer does to space": parallel lines pushed through two affine maps of the plane,
//! with or without a ReLU between them.
//!
//! ```text
//! affine   p ↦ M·p + t          (M: 2×2, t: 2)
//! ReLU     (u, v) ↦ (max(u, 0), max(v, 0))
//! ```
//! Affine ∘ affine is affine, so straight parallel lines stay straight and parallel whatever the
//! maps. A ReLU between them folds the plane along the axes: a line crossing an axis bends.

use crate::math::relu;
use serde::{Deserialize, Serialize};

pub type Point = [f32; 2];

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Affine2 {
    pub m: [[f32; 2]; 2],
    pub t: [f32; 2],
}

impl Affine2 {
    pub const IDENTITY: Affine2 = Affine2 { m: [[1.0, 0.0], [0.0, 1.0]], t: [0.0, 0.0] };

    pub fn apply(&self, p: Point) -> Point {
        [self.m[0][0] * p[0] + self.m[0][1] * p[1] + self.t[0], self.m[1][0] * p[0] + self.m[1][1] * p[1] + self.t[1]]
    }
}

/// `count` parallel lines of direction (1, slope), evenly spaced, each sampled at `samples`
/// points with x in [−1, 1].
pub fn parallel_lines(count: usize, slope: f32, samples: usize) -> Vec<Vec<Point>> {
    (0..count)
        .map(|i| {
            let offset = if count > 1 { -1.0 + 2.0 * i as f32 / (count - 1) as f32 } else { 0.0 };
            (0..samples)
                .map(|k| {
                    let x = -1.0 + 2.0 * k as f32 / (samples - 1).max(1) as f32;
                    [x, slope * x + offset]
                })
                .collect()
        })
        .collect()
}

/// Pushes every point through `first`, optionally a ReLU, then `second`.
pub fn transform(lines: &[Vec<Point>], first: &Affine2, relu_between: bool, second: &Affine2) -> Vec<Vec<Point>> {
    lines
        .iter()
        .map(|line| {
            line.iter()
                .map(|&p| {
                    let mut q = first.apply(p);
                    if relu_between {
                        q = [relu(q[0]), relu(q[1])];
                    }
                    second.apply(q)
                })
                .collect()
        })
        .collect()
}

/// How far a polyline is from straight: the largest |sin| of the angle between its first
/// segment's direction and any later segment's (0 for a straight line).
pub fn bend(line: &[Point]) -> f32 {
    let dir = |a: Point, b: Point| {
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let n = (dx * dx + dy * dy).sqrt();
        if n > 1e-9 {
            Some([dx / n, dy / n])
        } else {
            None
        }
    };
    let Some(first) = line.windows(2).find_map(|w| dir(w[0], w[1])) else {
        return 0.0;
    };
    line.windows(2).filter_map(|w| dir(w[0], w[1])).map(|d| (first[0] * d[1] - first[1] * d[0]).abs()).fold(0.0, f32::max)
}

/// |sin| of the angle between two lines' overall directions (0 when parallel).
pub fn non_parallelism(a: &[Point], b: &[Point]) -> f32 {
    let d = |l: &[Point]| {
        let (p, q) = (l[0], l[l.len() - 1]);
        let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
        let n = (dx * dx + dy * dy).sqrt().max(1e-12);
        [dx / n, dy / n]
    };
    let (u, v) = (d(a), d(b));
    (u[0] * v[1] - u[1] * v[0]).abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random_map(rng: &mut Rng) -> Affine2 {
        let mut v = || rng.uniform_in(-2.0, 2.0);
        Affine2 { m: [[v(), v()], [v(), v()]], t: [v(), v()] }
    }

    #[test]
    fn affine_after_affine_keeps_parallel_lines_straight_and_parallel() {
        let mut rng = Rng::new(5);
        let lines = parallel_lines(5, 0.7, 41);
        for _ in 0..200 {
            let (a, b) = (random_map(&mut rng), random_map(&mut rng));
            let out = transform(&lines, &a, false, &b);
            // Skip maps that collapse the plane (a line shrinks to a point).
            let len = |l: &[Point]| ((l[40][0] - l[0][0]).powi(2) + (l[40][1] - l[0][1]).powi(2)).sqrt();
            if out.iter().any(|l| len(l) < 1e-2) {
                continue;
            }
            for l in &out {
                assert!(bend(l) < 1e-3, "an affine image of a line is a line");
                assert!(non_parallelism(l, &out[0]) < 1e-3, "and parallel lines stay parallel");
            }
        }
    }

    #[test]
    fn a_relu_between_folds_the_plane() {
        let lines = parallel_lines(5, 0.7, 41);
        let out = transform(&lines, &Affine2::IDENTITY, true, &Affine2::IDENTITY);
        // The middle line y = 0.7x crosses both axes at the origin: x < 0 maps to (0, 0)...
        assert_eq!(out[2][0], [0.0, 0.0]);
        // ...and the line y = 0.7x + 0.5 bends where it crosses the y axis: folded.
        assert!(bend(&out[3]) > 0.5, "bend {}", bend(&out[3]));
        // Hand values of the maps.
        let m = Affine2 { m: [[2.0, 1.0], [0.0, -1.0]], t: [1.0, 3.0] };
        assert_eq!(m.apply([1.0, 2.0]), [5.0, 1.0]);
    }
}
