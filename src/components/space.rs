//! "What a layer does to space": parallel lines through two editable affine maps, with or without
//! a ReLU between them. The geometry is the engine's (`engine::lab::space`); this draws it.

use engine::lab::space::{bend, non_parallelism, parallel_lines, transform, Affine2, Point};
use leptos::prelude::*;

const COLORS: [&str; 5] = ["#2563eb", "#ea580c", "#059669", "#9333ea", "#dc2626"];

fn map_of(v: [f32; 6]) -> Affine2 {
    Affine2 { m: [[v[0], v[1]], [v[2], v[3]]], t: [v[4], v[5]] }
}

/// An SVG plot of polylines in a square view that fits them.
fn plane(title: &'static str, lines: &[Vec<Point>], id: &'static str) -> impl IntoView {
    let extent = lines.iter().flatten().map(|p| p[0].abs().max(p[1].abs())).fold(1.0f32, f32::max) * 1.15;
    let to_svg = |p: &Point| format!("{:.2},{:.2}", p[0] / extent * 100.0, -p[1] / extent * 100.0);
    let paths = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let d = l.iter().map(to_svg).collect::<Vec<_>>().join(" ");
            view! { <polyline points=d fill="none" stroke=COLORS[i % COLORS.len()] stroke-width="2.2" stroke-linejoin="round"/> }
        })
        .collect_view();
    let tick = format!("{extent:.1}");
    view! {
        <figure class="plane" id=id>
            <figcaption>{title}</figcaption>
            <svg viewBox="-110 -110 220 220" role="img" aria-label=format!("{title}: {} lines in a square of half-width {extent:.2}", lines.len())>
                <rect x="-100" y="-100" width="200" height="200" fill="#f8fafc" stroke="#e2e8f0"/>
                <line x1="-100" y1="0" x2="100" y2="0" stroke="#94a3b8" stroke-width="0.8"/>
                <line x1="0" y1="-100" x2="0" y2="100" stroke="#94a3b8" stroke-width="0.8"/>
                <text x="96" y="-4" font-size="8" text-anchor="end" fill="#64748b">{format!("x₁ → {tick}")}</text>
                <text x="4" y="-92" font-size="8" fill="#64748b">{format!("x₂ ↑ {tick}")}</text>
                {paths}
            </svg>
        </figure>
    }
}

#[component]
fn MapEditor(name: &'static str, map: RwSignal<[f32; 6]>) -> impl IntoView {
    let labels = ["m₁₁", "m₁₂", "m₂₁", "m₂₂", "t₁", "t₂"];
    let sliders = (0..6)
        .map(|i| {
            view! {
                <label class="slider">
                    <span>{labels[i]}</span>
                    <input type="range" min="-2" max="2" step="0.05" id=format!("{}-{}", name.to_lowercase(), i)
                        prop:value=move || map.get()[i].to_string()
                        on:input=move |ev| {
                            if let Ok(v) = event_target_value(&ev).parse::<f32>() {
                                map.update(|m| m[i] = v);
                            }
                        }/>
                    <output>{move || format!("{:.2}", map.get()[i])}</output>
                </label>
            }
        })
        .collect_view();
    view! {
        <div class="map-editor">
            <h4>{format!("Layer {name}: p ↦ M·p + t")}</h4>
            <div class="sliders">{sliders}</div>
        </div>
    }
}

#[component]
pub fn SpacePanel() -> impl IntoView {
    let first = RwSignal::new([1.0, -0.6, 0.8, 1.0, 0.3, -0.2]);
    let second = RwSignal::new([1.0, 0.5, -0.4, 1.0, 0.0, 0.0]);
    let relu = RwSignal::new(false);
    let input = parallel_lines(5, 0.7, 81);
    let input_view = plane("input: 5 parallel lines", &input, "plane-in");
    let output = Memo::new(move |_| transform(&input, &map_of(first.get()), relu.get(), &map_of(second.get())));
    let verdict = move || {
        output.with(|out| {
            let bent = out.iter().map(|l| bend(l)).fold(0.0f32, f32::max);
            let skew = out.iter().map(|l| non_parallelism(l, &out[0])).fold(0.0f32, f32::max);
            if bent < 1e-3 && skew < 1e-3 {
                "Still straight and parallel: two affine maps make one affine map.".to_string()
            } else if bent >= 1e-3 {
                format!("Folded: the ReLU bends lines where they cross an axis (max bend {:.0}°).", bent.asin().to_degrees())
            } else {
                "Straight but no longer parallel.".to_string()
            }
        })
    };
    view! {
        <section class="card space-panel" id="space-panel">
            <h3>"What a layer does to space"</h3>
            <p class="muted small">"A dense layer with two inputs and two outputs maps the plane by p ↦ M·p + t. Stack two of them: the result is again a single affine map — parallel lines stay parallel, so depth adds nothing. Put a ReLU between them and the plane folds along the axes: that fold is what lets a network bend a line into a curve."</p>
            <div class="space-grid">
                <div class="editors">
                    <MapEditor name="A" map=first/>
                    <label class="field check"><input type="checkbox" id="space-relu" prop:checked=move || relu.get()
                        on:change=move |ev| relu.set(event_target_checked(&ev))/><span>"ReLU between A and B"</span></label>
                    <MapEditor name="B" map=second/>
                </div>
                {input_view}
                {move || output.with(|o| plane("output: B(ReLU?(A(p)))", o, "plane-out"))}
            </div>
            <p class="verdict" id="space-verdict">{verdict}</p>
        </section>
    }
}
