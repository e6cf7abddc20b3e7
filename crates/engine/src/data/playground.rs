//! 2-D datasets of the playground (in the spirit of TensorFlow Playground), points in [−6, 6]²,
//! and the input features computed from (x, y).

use crate::math;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlayData {
    Circle,
    Xor,
    Gauss,
    Spiral,
    /// Three spiral arms, three classes.
    Spiral3,
    /// Regression: a tilted plane.
    RegPlane,
    /// Regression: a sum of Gaussian bumps.
    RegGauss,
    /// Points added by the user (clicks or a CSV file).
    Custom,
}

/// What the dataset asks the network to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    Binary,
    MultiClass(usize),
    Regression,
}

impl PlayData {
    pub const ALL: [PlayData; 8] = [
        PlayData::Circle,
        PlayData::Xor,
        PlayData::Gauss,
        PlayData::Spiral,
        PlayData::Spiral3,
        PlayData::RegPlane,
        PlayData::RegGauss,
        PlayData::Custom,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PlayData::Circle => "circle",
            PlayData::Xor => "exclusive or",
            PlayData::Gauss => "two Gaussians",
            PlayData::Spiral => "spiral",
            PlayData::Spiral3 => "3-class spiral",
            PlayData::RegPlane => "regression: plane",
            PlayData::RegGauss => "regression: Gaussians",
            PlayData::Custom => "your own points",
        }
    }

    pub fn problem(self) -> Problem {
        match self {
            PlayData::Spiral3 => Problem::MultiClass(3),
            PlayData::RegPlane | PlayData::RegGauss => Problem::Regression,
            _ => Problem::Binary,
        }
    }
}

/// A labelled point: `label` is a class index (0, 1, 2) or a regression target in [−1, 1].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
    pub label: f32,
}

/// `n` points of `data` with `noise` in [0, 0.5] (the share of the plane's radius used as jitter,
/// or the spread of the Gaussians). `Custom` yields none: its points come from the user.
pub fn generate(data: PlayData, n: usize, noise: f32, rng: &mut Rng) -> Vec<Point> {
    let noise = noise as f64;
    let jitter = |rng: &mut Rng| (rng.uniform64() * 2.0 - 1.0) * 5.0 * noise;
    let point = |x: f64, y: f64, label: f32| Point { x: x as f32, y: y as f32, label };
    let mut out = Vec::with_capacity(n);
    match data {
        PlayData::Circle => {
            for i in 0..n {
                let inside = i % 2 == 0;
                let r = if inside { 2.5 * rng.uniform64() } else { 3.5 + 1.5 * rng.uniform64() };
                let a = 2.0 * PI * rng.uniform64();
                let (jx, jy) = (jitter(rng), jitter(rng));
                out.push(point(r * math::sin(a) + jx, r * math::cos(a) + jy, inside as u8 as f32));
            }
        }
        PlayData::Xor => {
            for _ in 0..n {
                let pad = |v: f64| if v > 0.0 { v + 0.3 } else { v - 0.3 };
                let (x, y) = (pad(rng.uniform64() * 10.0 - 5.0), pad(rng.uniform64() * 10.0 - 5.0));
                let label = (x * y > 0.0) as u8 as f32;
                let (jx, jy) = (jitter(rng), jitter(rng));
                out.push(point(x + jx, y + jy, label));
            }
        }
        PlayData::Gauss => {
            let sigma = 0.5 + 3.0 * noise;
            for i in 0..n {
                let c = if i % 2 == 0 { 2.0 } else { -2.0 };
                out.push(point(c + sigma * rng.normal() as f64, c + sigma * rng.normal() as f64, (i % 2 == 0) as u8 as f32));
            }
        }
        PlayData::Spiral | PlayData::Spiral3 => {
            let arms = if data == PlayData::Spiral { 2 } else { 3 };
            let per_arm = n / arms;
            for arm in 0..arms {
                let delta = 2.0 * PI * arm as f64 / arms as f64;
                for i in 0..per_arm {
                    let f = i as f64 / per_arm as f64;
                    let (r, t) = (5.0 * f, 1.75 * 2.0 * PI * f + delta);
                    let (jx, jy) = (jitter(rng), jitter(rng));
                    let label = if arms == 2 { (arm == 0) as u8 as f32 } else { arm as f32 };
                    out.push(point(r * math::sin(t) + jx, r * math::cos(t) + jy, label));
                }
            }
        }
        PlayData::RegPlane | PlayData::RegGauss => {
            for _ in 0..n {
                let (x, y) = (rng.uniform64() * 12.0 - 6.0, rng.uniform64() * 12.0 - 6.0);
                let (jx, jy) = (jitter(rng), jitter(rng));
                let v = if data == PlayData::RegPlane { regression_plane(x + jx, y + jy) } else { regression_gauss(x + jx, y + jy) };
                out.push(point(x, y, v as f32));
            }
        }
        PlayData::Custom => {}
    }
    out
}

fn regression_plane(x: f64, y: f64) -> f64 {
    ((x + y) / 12.0).clamp(-1.0, 1.0)
}

fn regression_gauss(x: f64, y: f64) -> f64 {
    const BUMPS: [(f64, f64, f64); 6] = [(-4.0, 2.5, 1.0), (0.0, 2.5, -1.0), (4.0, 2.5, 1.0), (-4.0, -2.5, -1.0), (0.0, -2.5, 1.0), (4.0, -2.5, -1.0)];
    let v: f64 = BUMPS.iter().map(|&(cx, cy, s)| s * math::exp_f64(-((x - cx).powi(2) + (y - cy).powi(2)) / 2.0)).sum();
    v.clamp(-1.0, 1.0)
}

/// Input features computed from a point, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    X,
    Y,
    XSquared,
    YSquared,
    XTimesY,
    SinX,
    SinY,
    CosX,
    CosY,
}

impl Feature {
    pub const ALL: [Feature; 9] = [
        Feature::X,
        Feature::Y,
        Feature::XSquared,
        Feature::YSquared,
        Feature::XTimesY,
        Feature::SinX,
        Feature::SinY,
        Feature::CosX,
        Feature::CosY,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Feature::X => "x",
            Feature::Y => "y",
            Feature::XSquared => "x²",
            Feature::YSquared => "y²",
            Feature::XTimesY => "xy",
            Feature::SinX => "sin x",
            Feature::SinY => "sin y",
            Feature::CosX => "cos x",
            Feature::CosY => "cos y",
        }
    }

    pub fn eval(self, x: f32, y: f32) -> f32 {
        let (xd, yd) = (x as f64, y as f64);
        match self {
            Feature::X => x,
            Feature::Y => y,
            Feature::XSquared => x * x,
            Feature::YSquared => y * y,
            Feature::XTimesY => x * y,
            Feature::SinX => math::sin(xd) as f32,
            Feature::SinY => math::sin(yd) as f32,
            Feature::CosX => math::cos(xd) as f32,
            Feature::CosY => math::cos(yd) as f32,
        }
    }
}

/// Parses `x,y,label` lines (a header line is allowed). Errors name the line.
/// The most points of your own (clicked, from a CSV or an import).
pub const MAX_OWN_POINTS: usize = 2000;

/// One check of a user's points against the problem that will actually train on them: at most
/// [`MAX_OWN_POINTS`], finite coordinates in the plane [−6, 6]², and labels the problem can take
/// (a class `0..k`, or a regression target in [−1, 1]). Used by clicks, CSV files, imports and
/// the worker's command alike, so a label that doesn't exist is never indexed.
pub fn check_points(points: &[Point], problem: Problem) -> Result<(), String> {
    if points.len() > MAX_OWN_POINTS {
        return Err(format!("{} points: at most {MAX_OWN_POINTS} of your own", points.len()));
    }
    for (i, p) in points.iter().enumerate() {
        let which = || format!("point {} ({}, {}, label {})", i + 1, p.x, p.y, p.label);
        if !(p.x.is_finite() && p.y.is_finite() && p.x.abs() <= 6.0 && p.y.abs() <= 6.0) {
            return Err(format!("{}: x and y must lie in [−6, 6]", which()));
        }
        let ok = match problem {
            Problem::Binary => p.label == 0.0 || p.label == 1.0,
            Problem::MultiClass(k) => p.label.fract() == 0.0 && p.label >= 0.0 && p.label < k as f32,
            Problem::Regression => p.label.is_finite() && p.label.abs() <= 1.0,
        };
        if !ok {
            let allowed = match problem {
                Problem::Binary => "0 or 1".to_string(),
                Problem::MultiClass(k) => format!("a class from 0 to {}", k - 1),
                Problem::Regression => "a number in [−1, 1]".to_string(),
            };
            return Err(format!("{}: the label must be {allowed}", which()));
        }
    }
    Ok(())
}

pub fn parse_csv(text: &str, problem_classes: Option<usize>) -> Result<Vec<Point>, String> {
    let mut points = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if i == 0 && cells.iter().any(|c| c.parse::<f32>().is_err()) && cells.len() == 3 {
            continue; // header
        }
        let err = |why: &str| format!("line {}: {why} (expected x,y,label): \"{}\"", i + 1, line.chars().take(40).collect::<String>());
        if cells.len() != 3 {
            return Err(err(&format!("{} values", cells.len())));
        }
        let num = |s: &str| s.parse::<f32>().ok().filter(|v| v.is_finite());
        let (Some(x), Some(y), Some(label)) = (num(cells[0]), num(cells[1]), num(cells[2])) else {
            return Err(err("not a number"));
        };
        if x.abs() > 6.0 || y.abs() > 6.0 {
            return Err(err("x and y must lie in [−6, 6]"));
        }
        if let Some(k) = problem_classes {
            if label.fract() != 0.0 || label < 0.0 || label >= k as f32 {
                return Err(err(&format!("the label must be a class 0..{}", k - 1)));
            }
        }
        points.push(Point { x, y, label });
        if points.len() > MAX_OWN_POINTS {
            return Err(format!("line {}: more than {MAX_OWN_POINTS} points", i + 1));
        }
    }
    if points.is_empty() {
        return Err("no points in the file".into());
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_checked_against_the_problem_that_trains() {
        let p = |x: f32, y: f32, label: f32| Point { x, y, label };
        assert!(check_points(&[p(1.0, 2.0, 1.0), p(-6.0, 6.0, 0.0)], Problem::Binary).is_ok());
        assert!(check_points(&[p(1.0, 2.0, 2.0)], Problem::Binary).unwrap_err().contains("0 or 1"));
        assert!(check_points(&[p(1.0, 2.0, 7.0)], Problem::MultiClass(3)).is_err());
        assert!(check_points(&[p(1.0, 2.0, 0.5)], Problem::MultiClass(3)).is_err());
        assert!(check_points(&[p(1.0, 2.0, 7.0)], Problem::Regression).is_err());
        assert!(check_points(&[p(f32::NAN, 0.0, 0.0)], Problem::Binary).is_err());
        assert!(check_points(&[p(0.0, 1e9, 0.0)], Problem::Binary).is_err());
        assert!(check_points(&vec![p(0.0, 0.0, 0.0); MAX_OWN_POINTS + 1], Problem::Binary).is_err());
    }

    #[test]
    fn datasets_have_balanced_labels_in_range() {
        for data in PlayData::ALL {
            let pts = generate(data, 300, 0.1, &mut Rng::new(1));
            if data == PlayData::Custom {
                assert!(pts.is_empty());
                continue;
            }
            assert!(pts.len() >= 297, "{data:?}");
            assert!(pts.iter().all(|p| p.x.abs() <= 7.5 && p.y.abs() <= 7.5));
            match data.problem() {
                Problem::Binary => {
                    let ones = pts.iter().filter(|p| p.label == 1.0).count();
                    assert!((ones as f32 / pts.len() as f32 - 0.5).abs() < 0.1, "{data:?}");
                }
                Problem::MultiClass(k) => assert!(pts.iter().all(|p| (p.label as usize) < k)),
                Problem::Regression => assert!(pts.iter().all(|p| p.label.abs() <= 1.0)),
            }
        }
        // Noise-free circle: the label is the inner disc.
        for p in generate(PlayData::Circle, 100, 0.0, &mut Rng::new(2)) {
            assert_eq!(p.label == 1.0, (p.x * p.x + p.y * p.y).sqrt() < 3.0);
        }
    }

    #[test]
    fn features_hand_values() {
        assert_eq!(Feature::XTimesY.eval(2.0, -3.0), -6.0);
        assert_eq!(Feature::YSquared.eval(2.0, -3.0), 9.0);
        assert!((Feature::SinX.eval(std::f32::consts::FRAC_PI_2, 0.0) - 1.0).abs() < 1e-7);
        assert_eq!(Feature::CosY.eval(0.0, 0.0), 1.0);
    }

    #[test]
    fn csv_is_parsed_or_rejected_with_a_line_number() {
        let ok = parse_csv("x,y,label\n1,2,1\n-3.5, 0, 0\n", Some(2)).unwrap();
        assert_eq!(ok, vec![Point { x: 1.0, y: 2.0, label: 1.0 }, Point { x: -3.5, y: 0.0, label: 0.0 }]);
        assert!(parse_csv("1,2,1\n3,abc,0\n", Some(2)).unwrap_err().starts_with("line 2:"));
        assert!(parse_csv("1,2\n", Some(2)).unwrap_err().starts_with("line 1:"));
        assert!(parse_csv("1,2,7\n", Some(2)).unwrap_err().contains("class"));
        assert!(parse_csv("9,2,1\n", Some(2)).unwrap_err().contains("[−6, 6]"));
        assert!(parse_csv("", None).is_err());
    }
}
