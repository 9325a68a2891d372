//! The job runner's machinery, below the application state: the run slots, the cancel token of
//! every job held here, and the versions of the jobs this server saved last (for ETags). The
//! rules and the run loop are the jobs service's (`services/jobs.rs`).

use crate::store::JobRecord;
use protocol::{JobId, UserId};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Jobs running at once; more queue. Two keeps a 2-core machine responsive while jobs run.
pub const MAX_RUNNING: usize = 2;

/// The jobs this server holds and runs.
pub struct JobRunner {
    /// Run slots: a job runs while it holds one ([`MAX_RUNNING`] at once).
    pub slots: Arc<Semaphore>,
    /// Held while a submission counts the user's active jobs and inserts its own.
    pub submits: tokio::sync::Mutex<()>,
    cancels: Mutex<HashMap<JobId, CancellationToken>>,
    /// Each job's owner and version as last saved by this server, so a status poll that
    /// already has the current ETag is answered 304 without reading the job.
    versions: std::sync::Mutex<HashMap<JobId, (UserId, i64)>>,
    /// Set in a cluster: `versions` is not trusted (see [`JobRunner::forget_versions`]).
    no_cache: std::sync::atomic::AtomicBool,
    /// Where finished exports are written.
    pub export_dir: PathBuf,
}

/// Jobs whose versions are remembered at most; beyond it the memory starts again empty (a
/// miss only means a read of the job).
const REMEMBERED_JOBS: usize = 100_000;

impl JobRunner {
    pub fn new(export_dir: PathBuf) -> Self {
        JobRunner {
            slots: Arc::new(Semaphore::new(MAX_RUNNING)),
            cancels: Mutex::new(HashMap::new()),
            versions: std::sync::Mutex::new(HashMap::new()),
            no_cache: std::sync::atomic::AtomicBool::new(false),
            export_dir,
            submits: tokio::sync::Mutex::new(()),
        }
    }

    /// The cancel token of job `id`, held here until [`JobRunner::forget`].
    pub fn token(&self, id: &JobId) -> CancellationToken {
        let mut map = self.cancels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.clone()).or_default().clone()
    }

    /// Job `id` stopped running here.
    pub fn forget(&self, id: &str) {
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// The jobs queued or running on this server.
    pub fn held(&self) -> Vec<JobId> {
        let map = self.cancels.lock().unwrap_or_else(|p| p.into_inner());
        map.keys().cloned().collect()
    }

    /// How many jobs are queued or running on this server.
    pub fn held_count(&self) -> usize {
        self.cancels.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Cancels the job if this server holds it; false otherwise.
    pub fn cancel(&self, id: &str) -> bool {
        match self
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }
}

/// The ETag of a job's `version`.
pub fn etag_of(id: &str, version: i64) -> String {
    format!("\"{id}-{version}\"")
}

impl JobRunner {
    /// Remembers the version of a job this server just saved.
    pub fn remember(&self, r: &JobRecord) {
        let mut v = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() >= REMEMBERED_JOBS && !v.contains_key(r.id.as_str()) {
            v.clear();
        }
        v.insert(r.id.clone(), (r.user_id.clone(), r.version));
    }

    /// Stops answering ETags from memory: in a cluster another server may have saved a job
    /// since this one did, so every check reads the database.
    pub fn forget_versions(&self) {
        self.no_cache
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// The current ETag of `user_id`'s job `id`, if this server saved it last.
    pub fn current_etag(&self, id: &str, user_id: &str) -> Option<String> {
        if self.no_cache.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let v = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        v.get(id)
            .filter(|(owner, _)| owner == user_id)
            .map(|(_, version)| etag_of(id, *version))
    }
}
