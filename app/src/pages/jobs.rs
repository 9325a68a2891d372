//! The jobs page (`/jobs`): start a demo job, watch progress arrive over the jobs feed, cancel,
//! download exports.

use crate::api;
use crate::components::transports::{FeedReadout, TransportPicker};
use crate::state::chat::Chat;
use leptos::prelude::*;
use protocol::{Feed, Job};

fn job_label(kind: &str) -> &'static str {
    match kind {
        "export_room" => "Room export",
        "demo" => "Demo",
        _ => "Job",
    }
}

fn ago(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// The jobs page: start a demo, watch progress, cancel, download exports.
#[component]
pub fn JobsPage() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let act = chat.activity;
    let steps = RwSignal::new("10".to_string());
    let step_ms = RwSignal::new("500".to_string());
    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = serde_json::json!({
            "kind": "demo",
            "steps": steps.get_untracked().trim().parse::<i64>().unwrap_or(0),
            "step_ms": step_ms.get_untracked().trim().parse::<u64>().unwrap_or(0),
        });
        leptos::task::spawn_local(async move {
            match api::post::<_, Job>("/api/jobs", &body).await {
                Ok(job) => act.upsert_job(job),
                Err(e) => chat.notify(e.message),
            }
        });
    };
    view! {
        <section class="jobs-page" aria-labelledby="jobs-title" data-testid="jobs-page">
            <header class="room-head">
                <h1 id="jobs-title">"Jobs"</h1>
                <div class="room-actions">
                    <span class="via">"progress via " <TransportPicker feed=Feed::Jobs bare=true /></span>
                </div>
            </header>
            <div class="jobs-body">
                <form class="demo-form" on:submit=start>
                    <label>"Demo job: "
                        <input type="number" min="1" max="1000" aria-label="Steps" prop:value=move || steps.get()
                            on:input=move |ev| steps.set(event_target_value(&ev)) data-testid="demo-steps" />
                    </label>
                    <label>" steps of "
                        <input type="number" min="10" max="60000" step="10" aria-label="Milliseconds per step" prop:value=move || step_ms.get()
                            on:input=move |ev| step_ms.set(event_target_value(&ev)) data-testid="demo-step-ms" />
                    </label>
                    " ms "
                    <button type="submit" class="primary" data-testid="start-demo">"Start"</button>
                </form>
                <p class="muted">"Export a room from its header. Progress arrives over the jobs feed's transport; with short polling it shows in steps."</p>
                <FeedReadout feed=Feed::Jobs />
                <ul class="job-list">
                    <For each=move || act.jobs.get() key=|j| format!("{}:{}:{}", j.id, j.updated_at, j.state) let:job>
                        <JobRow job />
                    </For>
                </ul>
                <Show when=move || act.jobs.with(|j| j.is_empty())>
                    <p class="muted">"No jobs yet."</p>
                </Show>
            </div>
        </section>
    }
}

#[component]
fn JobRow(job: Job) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let act = chat.activity;
    let id = job.id.clone();
    let cancelling = {
        let id = id.clone();
        Memo::new(move |_| act.cancelling.with(|c| c.contains(&id)))
    };
    let cancel = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
            act.cancelling.update(|c| {
                c.insert(id.clone());
            });
            leptos::task::spawn_local(async move {
                if let Err(e) = api::post_empty(&format!("/api/jobs/{id}/cancel")).await {
                    act.cancelling.update(|c| {
                        c.remove(&id);
                    });
                    chat.notify(e.message);
                }
            });
        }
    };
    let state_text = match job.state.as_str() {
        "queued" => "Queued",
        "running" => "Running",
        "done" => "Done",
        "failed" => "Failed",
        "cancelled" => "Cancelled",
        _ => "Unknown",
    };
    let (one, many) = if job.kind == "export_room" {
        ("message", "messages")
    } else {
        ("step", "steps")
    };
    let count = format!(
        "{} / {} {}",
        job.done,
        job.total,
        protocol::plural(job.total, one, many)
    );
    // "Export of #lobby" rather than a kind of job.
    let title = match (job.kind.as_str(), &job.room_name) {
        ("export_room", Some(room)) => format!("Export of #{room}"),
        (kind, _) => job_label(kind).to_string(),
    };
    let updated_at = job.updated_at;
    let finished = job.is_finished();
    let eta = job
        .eta_ms
        .map(|ms| format!("about {} s left", (ms + 999) / 1000));
    view! {
        <li class=format!("job {}", job.state) data-testid="job" data-state=job.state.clone() id=format!("job-{}", job.id)>
            <div class="job-head">
                <strong data-testid="job-title">{title.clone()}</strong>
                <span class=format!("pill {}", job.state) data-testid="job-state">
                    {move || if cancelling.get() && !finished { "Cancelling…" } else { state_text }}
                </span>
                <span class="muted updated" title="Time since the last update reached this page">
                    {move || format!("updated {}", ago(act.clock.get() - updated_at))}
                </span>
            </div>
            <progress max="1" value=job.progress aria-label=format!("{title} progress")></progress>
            <div class="job-foot">
                <span data-testid="job-count">{count}</span>
                {eta.map(|e| view! { <span class="muted">{e}</span> })}
                <span class=if job.state == "failed" { "error" } else { "muted" }>{job.message.clone()}</span>
                {job.result_url.clone().map(|url| view! { <a href=url download data-testid="job-download">"Download"</a> })}
                {(!finished).then(|| view! {
                    <button class="link" on:click=cancel.clone() disabled=move || cancelling.get() data-testid="job-cancel">"Cancel"</button>
                })}
            </div>
        </li>
    }
}
