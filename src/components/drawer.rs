//! The lab's controls: a sidebar on wide screens; on a phone a drawer, closed until asked for,
//! so the run itself is what a narrow screen shows first.

use leptos::prelude::*;

#[component]
pub fn ControlsDrawer(children: Children) -> impl IntoView {
    let open = RwSignal::new(false);
    view! {
        <aside class="controls" class:open=move || open.get()>
            <button class="drawer-toggle" aria-controls="controls-body" aria-expanded=move || open.get().to_string()
                on:click=move |_| open.update(|o| *o = !*o)>
                {move || if open.get() { "✕ Hide the controls" } else { "☰ Controls: data, model, training" }}
            </button>
            <div class="drawer-body" id="controls-body">{children()}</div>
        </aside>
    }
}
