//! Group commit for chat messages: one writer task takes every message waiting to be sent, stores
//! them in one transaction (one commit, one WAL sync), publishes their events in id order, and
//! only then answers each sender. Under load many senders share one commit; alone, a message
//! waits for nothing but its own transaction.
//!
//! The writer runs as its own task, so a sender that goes away (a closed request or socket)
//! cannot leave a committed message unpublished, and an acknowledgement is never sent before
//! the commit it reports.

use super::Hub;
use crate::error::ApiError;
use crate::store::{NewMessage, SendOutcome, Store};
use protocol::Message;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Messages committed together at most. Large enough to absorb a burst from hundreds of
/// senders; small enough that one transaction stays in the low milliseconds.
pub const MAX_BATCH: usize = 256;
/// Messages waiting for the writer at most; senders beyond it wait for room (back-pressure).
const QUEUE: usize = 4 * MAX_BATCH;

/// A sent message and whether it is new (false: a retry of an earlier client id).
pub type Sent = Result<(Message, bool), ApiError>;

struct Job {
    msg: NewMessage,
    reply: oneshot::Sender<Sent>,
}

/// The handle senders use; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    stats: Arc<Stats>,
}

/// Batch counters, for the metrics page and the benchmarks.
#[derive(Default)]
pub struct Stats {
    pub batches: std::sync::atomic::AtomicU64,
    pub messages: std::sync::atomic::AtomicU64,
    pub largest: std::sync::atomic::AtomicU64,
}

impl Stats {
    pub fn json(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering::Relaxed;
        serde_json::json!({
            "batches": self.batches.load(Relaxed),
            "messages": self.messages.load(Relaxed),
            "largest_batch": self.largest.load(Relaxed),
        })
    }

    /// Appends the counters in Prometheus text format.
    pub fn prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        use std::sync::atomic::Ordering::Relaxed;
        for (name, kind, value) in [
            ("switchboard_write_batches_total", "counter", &self.batches),
            (
                "switchboard_write_batch_messages_total",
                "counter",
                &self.messages,
            ),
            ("switchboard_write_batch_largest", "gauge", &self.largest),
        ] {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {}", value.load(Relaxed));
        }
    }
}

impl Writer {
    /// Starts the writer task. It ends when the last handle is dropped, after finishing what was
    /// queued.
    pub fn spawn(store: Arc<dyn Store>, hub: Arc<Hub>) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(Stats::default());
        tokio::spawn(run(rx, store, hub, Arc::clone(&stats)));
        Writer { tx, stats }
    }

    /// Sends `msg` and waits until it is committed and published.
    pub async fn send(&self, msg: NewMessage) -> Sent {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { msg, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

fn stopped() -> ApiError {
    ApiError::Unavailable(
        "shutting_down",
        "The server is shutting down; retry.".into(),
    )
}

async fn run(mut rx: mpsc::Receiver<Job>, store: Arc<dyn Store>, hub: Arc<Hub>, stats: Arc<Stats>) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let msgs: Vec<NewMessage> = batch.iter().map(|j| j.msg.clone()).collect();
        stats.batches.fetch_add(1, Relaxed);
        stats.messages.fetch_add(msgs.len() as u64, Relaxed);
        stats.largest.fetch_max(msgs.len() as u64, Relaxed);
        let order = hub.order_lock().await;
        match store.send_messages(&msgs).await {
            Ok(outcomes) => {
                // Publish everything first (in id order), then acknowledge: an ack always
                // follows both the commit and the fan-out of its event.
                let mut answers = Vec::with_capacity(outcomes.len());
                for outcome in outcomes {
                    answers.push(match outcome {
                        Ok(SendOutcome::Created(m, events)) => {
                            hub.publish_committed(&events);
                            Ok((m, true))
                        }
                        Ok(SendOutcome::Existing(m)) => Ok((m, false)),
                        Err(e) => Err(ApiError::from(e)),
                    });
                }
                drop(order);
                for (job, answer) in batch.drain(..).zip(answers) {
                    let _ = job.reply.send(answer);
                }
            }
            Err(e) => {
                drop(order);
                // Nothing was committed: every sender gets the error and may retry with the same
                // client id.
                tracing::error!(error = %e, n = batch.len(), "group commit failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(ApiError::Unavailable(
                        "write_failed",
                        "The message was not stored; retry.".into(),
                    )));
                }
            }
        }
    }
}
