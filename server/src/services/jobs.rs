//! Background jobs: a runner inside the server. Jobs and their progress live in the `jobs` table;
//! at most [`crate::job_runner::MAX_RUNNING`] run at once and the rest queue (in order); cancel works while queued
//! or running. Every change is a new snapshot (its version is the ETag) and an event on the
//! `jobs` feed, so any transport shows every step.
//!
//! Restarts: a job that was running when the server stopped is marked failed with a clear
//! reason (its partial work is not trusted, and a demo's rhythm cannot be resumed honestly);
//! a job still queued is queued again.

use super::{notifications, parse_id, uploads};
use crate::clock::{new_id, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::job_runner::etag_of;
use crate::state::AppState;
use crate::store::JobRecord;
use protocol::{EventData, Job, JobId, RoomId, User};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Messages read per query while exporting: bounds memory however large the room.
pub const EXPORT_PAGE: u32 = 500;
/// Demo limits: enough for long comparisons, not enough to flood the log.
pub const MAX_DEMO_STEPS: i64 = 1000;
pub const MIN_STEP_MS: u64 = 10;
pub const MAX_STEP_MS: u64 = 60_000;
/// An ETA is shown once a job has run this long (earlier guesses jump around).
pub const ETA_AFTER_MS: i64 = 2_000;
/// Jobs listed by `GET /api/jobs`.
pub const LIST_LIMIT: u32 = 100;
pub const RESTART_REASON: &str = "The server restarted while this job was running; start it again.";
pub const ORPHAN_REASON: &str =
    "The server running this job stopped before it finished; start it again.";

/// A user's newest jobs read to count those queued or running (older ones are long finished).
const ACTIVE_SCAN: u32 = 200;
/// Retry-After when a user already has `--jobs-active-per-user` jobs queued or running.
const ACTIVE_RETRY_SECS: u64 = 5;

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobRequest {
    ExportRoom { room_id: RoomId },
    Demo { steps: i64, step_ms: u64 },
}

#[derive(Debug, serde::Serialize, Deserialize)]
struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room_id: Option<RoomId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step_ms: Option<u64>,
}

fn params(r: &JobRecord) -> Params {
    serde_json::from_str(&r.params).unwrap_or(Params {
        room_id: None,
        room_name: None,
        step_ms: None,
    })
}

/// The API's view of a job. The ETA comes from the stored times, so one version has one view.
pub fn view(r: &JobRecord) -> Job {
    let finished = matches!(r.state.as_str(), "done" | "failed" | "cancelled");
    let progress = if r.total > 0 {
        (r.done as f64 / r.total as f64).clamp(0.0, 1.0)
    } else if r.state == "done" {
        1.0
    } else {
        0.0
    };
    let eta_ms = match (r.state.as_str(), r.started_at) {
        ("running", Some(started)) if r.done > 0 && r.updated_at - started >= ETA_AFTER_MS => {
            let elapsed = r.updated_at - started;
            Some(elapsed * (r.total - r.done).max(0) / r.done)
        }
        _ => None,
    };
    let p = params(r);
    Job {
        id: r.id.clone(),
        kind: r.kind.clone(),
        state: r.state.clone(),
        progress,
        done: r.done,
        total: r.total,
        message: r.message.clone(),
        eta_ms: if finished { None } else { eta_ms },
        created_at: r.created_at,
        updated_at: r.updated_at,
        result_url: match (r.state.as_str(), r.result_path.as_deref()) {
            ("done", Some(path)) => Some(match path.strip_prefix(UPLOAD_RESULT) {
                Some(upload) => format!("/api/uploads/{upload}"),
                None => format!("/api/jobs/{}/result", r.id),
            }),
            _ => None,
        },
        room_id: p.room_id,
        room_name: p.room_name,
    }
}

pub fn etag(r: &JobRecord) -> String {
    etag_of(&r.id, r.version)
}

/// Saves a job's new state and publishes its snapshot (and, when it finished or failed, the
/// owner's notification).
async fn publish(state: &AppState, job: JobRecord) -> ApiResult<JobRecord> {
    let store = state.store.clone();
    state
        .hub
        .commit::<_, ApiError, _>(async move {
            let (saved, event) = store
                .save_job(&job, &|saved| EventData::Job(view(saved)).data_json())
                .await?;
            let snapshot = view(&saved);
            let mut events = vec![event];
            if let Some(note) = notifications::for_job(&saved.user_id, &snapshot, saved.updated_at)
            {
                events.extend(store.notify(vec![note]).await?);
            }
            Ok((saved, events))
        })
        .await
        .inspect(|saved| state.jobs.remember(saved))
}

pub async fn submit(state: &AppState, me: &User, req: JobRequest) -> ApiResult<Job> {
    let now = now_ms();
    let (kind, params, total) = match req {
        JobRequest::Demo { steps, step_ms } => {
            if !(1..=MAX_DEMO_STEPS).contains(&steps) {
                return Err(ApiError::bad("invalid_steps", "steps must be 1 to 1000"));
            }
            if !(MIN_STEP_MS..=MAX_STEP_MS).contains(&step_ms) {
                return Err(ApiError::bad(
                    "invalid_step_ms",
                    "step_ms must be 10 to 60000",
                ));
            }
            let p = Params {
                room_id: None,
                room_name: None,
                step_ms: Some(step_ms),
            };
            ("demo", p, steps)
        }
        JobRequest::ExportRoom { room_id } => {
            // Only members export (a public room's non-members may read it, not export it).
            let room = super::chat::member_room(state, me, &room_id).await?;
            let total = state.store.message_count(&room.id).await?;
            let p = Params {
                room_id: Some(room.id),
                room_name: Some(room.name),
                step_ms: None,
            };
            ("export_room", p, total)
        }
    };
    // Quotas: submissions per hour, and jobs queued or running at once (counted and inserted
    // under one lock, so simultaneous submissions cannot all pass the count).
    super::per_hour(state, "jobs", &me.id, state.config.jobs_per_user_per_hour)?;
    let _submitting = state.jobs.submits.lock().await;
    let cap = state.config.jobs_active_per_user;
    if cap > 0 {
        let active = state
            .store
            .jobs_of(&me.id, ACTIVE_SCAN)
            .await?
            .iter()
            .filter(|j| j.state == "queued" || j.state == "running")
            .count();
        if active >= cap as usize {
            return Err(ApiError::RateLimited(ACTIVE_RETRY_SECS));
        }
    }
    let record = JobRecord {
        id: new_id().into(),
        user_id: me.id.clone(),
        kind: kind.into(),
        params: serde_json::to_string(&params).map_err(|e| ApiError::Internal(e.into()))?,
        state: "queued".into(),
        done: 0,
        total,
        message: "Queued".into(),
        result_path: None,
        cancel: false,
        created_at: now,
        started_at: None,
        updated_at: now,
        version: 0,
    };
    state.store.insert_job(&record).await?;
    // The first snapshot (version 1) goes out like every later one.
    let saved = publish(state, record).await?;
    spawn(state, saved.id.clone());
    Ok(view(&saved))
}

fn spawn(state: &AppState, id: JobId) {
    let state = state.clone();
    let token = state.jobs.token(&id);
    tokio::spawn(async move {
        if let Err(e) = run(&state, &id, token).await {
            tracing::warn!(job = %id, error = %e, "job runner");
        }
        state.jobs.forget(&id);
    });
}

enum Stop {
    Cancelled,
    Failed(String),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        tracing::warn!(error = %e, "job step failed");
        Stop::Failed(match e.code() {
            crate::error::STORAGE_UNAVAILABLE => {
                "The server could not reach its storage. Try again later.".into()
            }
            _ => "The job hit an internal error.".into(),
        })
    }
}

async fn run(state: &AppState, id: &JobId, token: CancellationToken) -> ApiResult<()> {
    let permit = tokio::select! {
        p = state.jobs.slots.clone().acquire_owned() => p.map_err(|e| ApiError::Internal(e.into()))?,
        _ = token.cancelled() => {
            finish(state, id, Err(Stop::Cancelled)).await?;
            return Ok(());
        }
        _ = state.shutdown.cancelled() => return Ok(()),
    };
    let Some(mut job) = state.store.job(id).await? else {
        return Ok(());
    };
    if job.state != "queued" {
        return Ok(());
    }
    if job.cancel {
        finish(state, id, Err(Stop::Cancelled)).await?;
        return Ok(());
    }
    let now = now_ms();
    job.state = "running".into();
    job.started_at = Some(now);
    job.updated_at = now;
    job.message = "Started".into();
    let job = publish(state, job).await?;
    let outcome = match job.kind.as_str() {
        "demo" => run_demo(state, job, &token).await,
        "export_room" => run_export(state, job, &token).await,
        other => Err(Stop::Failed(format!("Unknown job kind {other}."))),
    };
    drop(permit);
    if state.shutdown.is_cancelled() {
        // Left running: the next start marks it failed with the restart reason.
        return Ok(());
    }
    finish(state, id, outcome).await
}

/// Writes the final state: done (with the result), cancelled, or failed with its reason.
async fn finish(
    state: &AppState,
    id: &JobId,
    outcome: Result<Option<String>, Stop>,
) -> ApiResult<()> {
    let Some(mut job) = state.store.job(id).await? else {
        return Ok(());
    };
    job.updated_at = now_ms();
    match outcome {
        Ok(result) => {
            job.state = "done".into();
            job.total = job.total.max(job.done);
            job.message = match (&result, params(&job).room_name) {
                (Some(_), Some(room)) => format!(
                    "Exported {} from #{room}",
                    protocol::count(job.done, "message", "messages")
                ),
                (Some(_), None) => {
                    format!(
                        "Exported {}",
                        protocol::count(job.done, "message", "messages")
                    )
                }
                (None, _) => format!("Finished {}", protocol::count(job.done, "step", "steps")),
            };
            job.result_path = result;
        }
        Err(Stop::Cancelled) => {
            job.state = "cancelled".into();
            job.message = "Cancelled".into();
        }
        Err(Stop::Failed(reason)) => {
            job.state = "failed".into();
            job.message = reason;
        }
    }
    publish(state, job).await?;
    Ok(())
}

async fn run_demo(
    state: &AppState,
    mut job: JobRecord,
    token: &CancellationToken,
) -> Result<Option<String>, Stop> {
    let step = Duration::from_millis(params(&job).step_ms.unwrap_or(1000));
    while job.done < job.total {
        tokio::select! {
            _ = tokio::time::sleep(step) => {}
            _ = token.cancelled() => return Err(Stop::Cancelled),
            _ = state.shutdown.cancelled() => return Err(Stop::Cancelled),
        }
        job.done += 1;
        job.updated_at = now_ms();
        job.message = format!("Step {} of {}", job.done, job.total);
        job = publish(state, job).await?;
    }
    Ok(None)
}

/// Writes the room's full history as JSON, page by page, never holding the room in memory,
/// into an upload of the job's owner (stored in the database like every file, so any server of
/// a cluster serves it, to its owner only). The job's result is `upload:{id}`.
async fn run_export(
    state: &AppState,
    job: JobRecord,
    token: &CancellationToken,
) -> Result<Option<String>, Stop> {
    let name = export_name(&job);
    let file = uploads::ServerFile::create(state, &job.user_id, &job.id, &name, "application/json")
        .await
        .map_err(export_failed)?;
    let id = file.id.clone();
    match write_export(state, job, token, file).await {
        Ok(id) => Ok(Some(format!("{UPLOAD_RESULT}{id}"))),
        Err(stop) => {
            // Cancelled or failed, whatever the step: nothing partial is left behind.
            uploads::ServerFile::discard(state, &id).await;
            Err(stop)
        }
    }
}

/// How a job's result names the upload that holds it (older results name a file on disk).
const UPLOAD_RESULT: &str = "upload:";

/// An export that could not be stored, in words for its owner (the cause goes to the log).
fn export_failed(e: crate::store::StoreError) -> Stop {
    tracing::warn!(error = %e, "export not stored");
    Stop::Failed("The export could not be saved on the server. Try again later.".into())
}

/// The name an export's file is downloaded under: "{room}-export.json".
fn export_name(job: &JobRecord) -> String {
    let name = params(job).room_name.unwrap_or_else(|| "room".into());
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{safe}-export.json")
}

/// Writes the export of the job's room into `out`; on an error the caller removes it.
async fn write_export(
    state: &AppState,
    mut job: JobRecord,
    token: &CancellationToken,
    mut out: uploads::ServerFile,
) -> Result<String, Stop> {
    let p = params(&job);
    let room_id = p
        .room_id
        .clone()
        .ok_or_else(|| Stop::Failed("The export names no room.".into()))?;
    let io = export_failed;
    let head = serde_json::json!({ "id": room_id, "name": p.room_name });
    let exported_at = serde_json::Value::String(iso8601(now_ms()));
    out.write(format!("{{\"room\":{head},\"exported_at\":{exported_at},\"messages\":[").as_bytes())
        .await
        .map_err(io)?;
    let mut after = 0;
    loop {
        if token.is_cancelled() || state.shutdown.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        let page = state
            .store
            .messages_after(&room_id, after, EXPORT_PAGE)
            .await
            .map_err(ApiError::from)?;
        if page.is_empty() {
            break;
        }
        for m in &page {
            if job.done > 0 {
                out.write(b",").await.map_err(io)?;
            }
            let json = serde_json::to_vec(&exported(m)).map_err(|e| {
                tracing::warn!(error = %e, "export: a message did not serialize");
                Stop::Failed("The export hit an internal error.".into())
            })?;
            out.write(&json).await.map_err(io)?;
            job.done += 1;
        }
        after = page.last().map_or(after, |m| m.seq);
        job.total = job.total.max(job.done);
        job.updated_at = now_ms();
        job.message = format!(
            "Exported {} of {}",
            job.done,
            protocol::count(job.total, "message", "messages")
        );
        job = publish(state, job).await?;
    }
    out.write(b"]}").await.map_err(io)?;
    // Complete (and so servable) before "done" is announced: a failure here is a failure too.
    out.finish().await.map_err(io)
}

/// A message as an export writes it: its time in ISO 8601 (UTC), without the live cursor and
/// the sender's retry id, which mean nothing outside this server.
fn exported(m: &protocol::Message) -> serde_json::Value {
    serde_json::json!({
        "id": m.id,
        "seq": m.seq,
        "author": m.author,
        "body": m.body,
        "created_at": iso8601(m.created_at),
    })
}

/// Unix milliseconds as ISO 8601 in UTC with milliseconds: "2026-12-06T16:02:50.123Z".
pub fn iso8601(ms: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// At start-up: running jobs failed with the restart reason; queued jobs queue again. In a
/// cluster the other servers' jobs are theirs: [`sweep_orphans`] fails only those whose server is
/// gone.
pub async fn recover(state: &AppState) -> ApiResult<()> {
    if state.cluster.get().is_some() {
        return Ok(());
    }
    for mut job in state.store.jobs_in_state("running").await? {
        job.state = "failed".into();
        job.message = RESTART_REASON.into();
        job.updated_at = now_ms();
        publish(state, job).await?;
    }
    for job in state.store.jobs_in_state("queued").await? {
        spawn(state, job.id);
    }
    Ok(())
}

/// In a cluster: fails the jobs no live server holds (their server died or restarted), once
/// they have been quiet for the node TTL. One server sweeps (the first by name among the live
/// ones), so a job is failed once.
pub async fn sweep_orphans(state: AppState) {
    let Some(cluster) = state.cluster.get() else {
        return;
    };
    let ttl = cluster.node_ttl;
    let mut tick = tokio::time::interval(ttl / 3);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        let live = cluster.live_nodes();
        if live.iter().any(|n| n.as_str() < &*cluster.node) {
            continue;
        }
        if let Err(e) = sweep_once(&state, cluster, ttl).await {
            tracing::warn!(error = %e, "sweeping orphaned jobs");
        }
    }
}

async fn sweep_once(
    state: &AppState,
    cluster: &crate::cluster::Cluster,
    ttl: Duration,
) -> ApiResult<()> {
    let held: std::collections::HashSet<JobId> = state.jobs.held().into_iter().collect();
    let quiet_since = now_ms() - ttl.as_millis() as i64;
    for which in ["running", "queued"] {
        for mut job in state.store.jobs_in_state(which).await? {
            if held.contains(&job.id) || job.updated_at > quiet_since {
                continue;
            }
            // None: this server cannot tell yet (its backplane is new or down).
            if cluster.job_held_elsewhere(&job.id) != Some(false) {
                continue;
            }
            tracing::warn!(job = %job.id, "failing a job whose server is gone");
            job.state = "failed".into();
            job.message = ORPHAN_REASON.into();
            job.updated_at = now_ms();
            publish(state, job).await?;
        }
    }
    Ok(())
}

/// A job of mine, or 404 (another user's jobs do not exist for me).
pub async fn mine(state: &AppState, me: &User, id: &JobId) -> ApiResult<JobRecord> {
    let id: JobId = parse_id(id, "job")?;
    match state.store.job(&id).await? {
        Some(j) if j.user_id == me.id => Ok(j),
        _ => Err(ApiError::NotFound("job")),
    }
}

pub async fn list(state: &AppState, me: &User) -> ApiResult<Vec<Job>> {
    Ok(state
        .store
        .jobs_of(&me.id, LIST_LIMIT)
        .await?
        .iter()
        .map(view)
        .collect())
}

pub async fn cancel(state: &AppState, me: &User, id: &JobId) -> ApiResult<Job> {
    let job = mine(state, me, id).await?;
    if matches!(job.state.as_str(), "done" | "failed" | "cancelled") {
        return Err(ApiError::Conflict(
            "job_finished",
            "The job has already finished.".into(),
        ));
    }
    let job = state
        .store
        .request_cancel(&job.id)
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    if !state.jobs.cancel(&job.id) {
        // In a cluster another server may hold it: it stops it when told. Unless one is known
        // to, or no runner holds it (it never got one): cancel it here.
        let held_elsewhere = match state.cluster.get() {
            Some(cluster) => {
                cluster.relay.cancel_job(&job.id);
                cluster.job_held_elsewhere(&job.id) == Some(true)
            }
            None => false,
        };
        if !held_elsewhere {
            finish(state, &job.id, Err(Stop::Cancelled)).await?;
        }
    }
    Ok(view(&job))
}

/// Where a finished job's result is.
pub enum JobResult {
    /// An upload (served like every upload, to its owner).
    Upload(String),
    /// A file on this server's disk, with the name to download it under (exports made before
    /// exports were stored in the database).
    Disk(PathBuf, String),
}

/// The finished export's file, if this is one.
pub async fn result_file(state: &AppState, me: &User, id: &JobId) -> ApiResult<JobResult> {
    let job = mine(state, me, id).await?;
    let Some(file) = job.result_path.as_ref().filter(|_| job.state == "done") else {
        return Err(ApiError::NotFound("result"));
    };
    if let Some(upload) = file.strip_prefix(UPLOAD_RESULT) {
        return Ok(JobResult::Upload(upload.to_string()));
    }
    Ok(JobResult::Disk(
        state.jobs.export_dir.join(file),
        export_name(&job),
    ))
}
