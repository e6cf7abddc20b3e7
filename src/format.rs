//! Number formatting for the UI.

/// About four significant digits, switching to exponent notation for very small or large values.
pub fn short(v: f32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞".into() } else { "−∞".into() };
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.3e}")
    } else {
        let digits = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    }
}

/// The exact value (shortest text that reads back to the same f32): for tests and links.
pub fn exact(v: f32) -> String {
    format!("{v}")
}
