//! The log as the hub's safety net. Event ids are gapless, so events waiting behind a missing
//! id (see [`Hub::accept`]) mean a publication never arrived: from another server over the
//! backplane, or from this one if a commit was never published. The gap filler reads such ids
//! from the log after a short grace, and in a cluster also reads the log's head now and then
//! (often while the backplane is down), so nothing acknowledged depends on the backplane.

use super::Hub;
use crate::store::Store;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a server waits for a missing id to come over the backplane before reading it from
/// the log: ids from different servers cross Redis in any order.
const GAP_GRACE: Duration = Duration::from_millis(30);
/// How often the log's head is read while the backplane is up (catches a publication that was
/// lost without a later event showing the gap) and while it is down (the only path then).
const HEAD_POLL_UP: Duration = Duration::from_secs(1);
const HEAD_POLL_DOWN: Duration = Duration::from_millis(100);
/// Events read from the log per query when filling a gap.
const FILL_PAGE: u32 = 1000;

/// What the gap filler counts (the backplane shows them among its counters).
#[derive(Default)]
pub struct GapStats {
    /// Times the hub was found behind the log.
    pub gaps: AtomicU64,
    /// Events read from the log because the backplane had not brought them (yet).
    pub filled_from_log: AtomicU64,
}

/// A single server's safety net: its own commits are published in id order, so events wait
/// behind a missing id only if a commit was never published; then the log has it.
pub fn spawn_single_gap_filler(hub: Arc<Hub>, store: Arc<dyn Store>, stop: CancellationToken) {
    tokio::spawn(gap_filler(
        hub,
        store,
        Arc::new(GapStats::default()),
        None,
        stop,
    ));
}

/// Reads from the log what the backplane has not brought: after a short grace when events
/// wait behind a missing id, and (in a cluster: `backplane_up` is the backplane's "subscribed"
/// flag) whenever the log's head is ahead of the hub's.
pub async fn gap_filler(
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    stats: Arc<GapStats>,
    backplane_up: Option<Arc<AtomicBool>>,
    stop: CancellationToken,
) {
    let poll_head = backplane_up.is_some();
    loop {
        let every = match &backplane_up {
            None => Duration::from_secs(3600),
            Some(up) if up.load(Ordering::Relaxed) => HEAD_POLL_UP,
            Some(_) => HEAD_POLL_DOWN,
        };
        tokio::select! {
            _ = hub.gap_noticed() => {
                tokio::select! {
                    _ = tokio::time::sleep(GAP_GRACE) => {}
                    _ = stop.cancelled() => return,
                }
            }
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        if !poll_head && hub.pending() > 0 {
            tracing::warn!(
                waiting = hub.pending(),
                "events waited behind an id never published here; reading the log"
            );
        }
        if let Err(e) = catch_up(&hub, &*store, &stats).await {
            tracing::warn!(error = %e, "backplane: reading the log failed");
        }
    }
}

/// Brings the hub up to the log's head.
pub async fn catch_up(
    hub: &Hub,
    store: &dyn Store,
    stats: &GapStats,
) -> crate::store::StoreResult<()> {
    let through = store.head().await?;
    let mut counted = false;
    while hub.head() < through {
        if !counted {
            stats.gaps.fetch_add(1, Ordering::Relaxed);
            counted = true;
        }
        let from = hub.head();
        let events = store.events_between(from, through, FILL_PAGE).await?;
        let last = events.last().map(|e| e.id);
        stats
            .filled_from_log
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        // A full page: the ids after its last one are still to read, not holes.
        let page_through = match last {
            Some(last) if events.len() as u32 == FILL_PAGE => last,
            _ => through,
        };
        hub.fill(events, page_through);
        if hub.head() <= from {
            break;
        }
    }
    Ok(())
}
