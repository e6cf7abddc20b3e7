//! A small histogram (SVG) of a tensor summary: title, bars, the value range on the x axis and
//! the peak count on the y axis.

use crate::format::short;
use engine::stats::TensorStats;
use leptos::prelude::*;

const W: f64 = 220.0;
const H: f64 = 70.0;

#[component]
pub fn Histogram(title: String, stats: TensorStats, #[prop(default = "#2563eb")] color: &'static str) -> impl IntoView {
    let peak = stats.bins.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = stats.bins.len().max(1) as f64;
    let bars = stats
        .bins
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let h = (c as f64 / peak) * (H - 2.0);
            view! {
                <rect x=format!("{:.1}", i as f64 * W / n + 0.5) y=format!("{:.1}", H - h)
                    width=format!("{:.1}", W / n - 1.0) height=format!("{h:.1}") fill=color>
                    <title>{format!("{c} values")}</title>
                </rect>
            }
        })
        .collect_view();
    // What a screen reader says for the picture: the same numbers the caption and axes show.
    let alt = format!(
        "histogram of {title}: {} bins from {} to {}, the tallest holding {} values; mean {}, spread {}",
        stats.bins.len(),
        short(stats.min),
        short(stats.max),
        peak as u64,
        short(stats.mean),
        short(stats.std)
    );
    let warn = (stats.non_finite > 0).then(|| view! { <span class="warn">{format!(" · {} NaN/∞", stats.non_finite)}</span> });
    view! {
        <figure class="hist">
            <figcaption>{title}</figcaption>
            <div class="hist-body">
                <span class="hist-y" title="count of values in the tallest bar">{format!("{}", peak as u64)}</span>
                <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img" aria-label=alt>
                    <line x1="0" y1=format!("{H}") x2=format!("{W}") y2=format!("{H}") stroke="#94a3b8" stroke-width="1"/>
                    {bars}
                </svg>
            </div>
            <div class="hist-x"><span>{short(stats.min)}</span><span class="muted">"value"</span><span>{short(stats.max)}</span></div>
            <div class="hist-stats">
                {format!("μ {}  σ {}  ‖·‖ {}", short(stats.mean), short(stats.std), short(stats.l2))}
                {warn}
            </div>
        </figure>
    }
}
