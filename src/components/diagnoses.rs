//! The diagnosis banner: what looks wrong with the run right now, and a one-click fix.

use crate::client::LabState;
use engine::lab::diagnose::DiagnosisKind;
use leptos::prelude::*;

#[component]
pub fn Diagnoses(state: LabState) -> impl IntoView {
    let items = move || {
        state.snapshot.with(|s| {
            s.as_ref()
                .map(|s| s.diagnoses.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|d| {
                    let severe = d.kind == DiagnosisKind::NonFinite;
                    let fix = d.fix.clone().map(|f| {
                        let label = f.label.clone();
                        view! { <button class="fix" on:click=move |_| state.apply_fix(&f)>{label}</button> }
                    });
                    view! {
                        <div class=if severe { "diagnosis severe" } else { "diagnosis" } data-kind=format!("{:?}", d.kind)>
                            <span class="icon">{if severe { "stopped" } else { "check" }}</span>
                            <span class="text">{d.message}</span>
                            {fix}
                        </div>
                    }
                })
                .collect_view()
        })
    };
    view! { <div class="diagnoses" id="diagnoses">{items}</div> }
}
