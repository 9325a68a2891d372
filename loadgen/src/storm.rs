//! Reconnect storm: many WebSocket clients connected, the server restarted under them. Each
//! client reconnects with the browser client's backoff (exponential, full jitter; or without
//! jitter, for comparison) and resumes by cursor. Reports how the reconnects spread, how long
//! until everyone was back, and whether anyone missed or repeated a message.

use crate::client::{self, now_us, scan, User};
use crate::http::Http;
use crate::scenarios::{Target, OPEN_CONCURRENCY};
use crate::stats::{summarize, Summary};
use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// The browser client's backoff (app/src/live: 500 ms doubling to 30 s, full jitter, ≥ 100 ms).
const BACKOFF_BASE_MS: f64 = 500.0;
const BACKOFF_MAX_MS: f64 = 30_000.0;

fn backoff(attempt: u32, jitter: bool) -> Duration {
    let bound = (BACKOFF_BASE_MS * 2f64.powi(attempt.clamp(1, 16) as i32 - 1)).min(BACKOFF_MAX_MS);
    let ms = if jitter {
        (random_unit() * bound).max(100.0)
    } else {
        bound
    };
    Duration::from_secs_f64(ms / 1000.0)
}

/// A uniform number in [0, 1) from the std hasher's random keys (no rand dependency).
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_us());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

type Ws = client::WsStream;

/// Opens a chat WebSocket from `cursor`; returns it and the hello's cursor.
async fn open(addr: SocketAddr, user: &User, cursor: Option<i64>) -> Result<(Ws, i64)> {
    let q = cursor.map_or(String::new(), |c| format!("&cursor={c}&reconnect=1"));
    let (ws, hello) = client::ws_open(addr, user, &format!("feeds=chat{q}")).await?;
    let at = hello.find("\"cursor\":").context("hello without cursor")? + 9;
    let digits: String = hello[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Ok((ws, digits.parse()?))
}

#[derive(Debug)]
pub struct StormReport {
    pub clients: usize,
    pub jitter: bool,
    /// From SIGTERM to the restarted server answering /healthz.
    pub down_ms: f64,
    /// Reconnects, timed from the restarted server being ready.
    pub reconnect: Summary,
    /// The most reconnects in any 100 ms.
    pub peak_per_100ms: u64,
    /// Attempts that failed (server still down, refused) before succeeding.
    pub failed_attempts: u64,
    pub back: usize,
    pub published: u64,
    /// Messages some client never received, and messages received twice, over all clients.
    pub missing: u64,
    pub duplicates: u64,
}

/// Runs the storm. `restart` stops the server (SIGTERM) and starts it again on the same address
/// and database, returning once it is healthy.
pub async fn storm<R, Fut>(
    t: Target,
    clients: usize,
    jitter: bool,
    restart: R,
) -> Result<StormReport>
where
    R: FnOnce() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let run = crate::scenarios::run_id();
    let users = crate::scenarios::users_for(t, &run, clients).await?;
    let publisher = client::signup(t.addr, &format!("lg{run}p")).await?;
    let room = client::create_room(t.addr, &publisher, &format!("storm-{run}")).await?;
    for u in &users {
        client::join(t.addr, u, &room).await?;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ready = Arc::new(AtomicU64::new(0));
    let back = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let reconnects: Arc<Mutex<Vec<u64>>> = Arc::default();
    let gate = Arc::new(Semaphore::new(OPEN_CONCURRENCY));
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let user = users[i % users.len()].clone();
        let (mut stopped, ready, back, failed, reconnects, gate) = (
            stopped.clone(),
            ready.clone(),
            back.clone(),
            failed.clone(),
            reconnects.clone(),
            gate.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await?;
            let (mut ws, mut cursor) = open(t.addr, &user, None).await?;
            drop(permit);
            ready.fetch_add(1, Relaxed);
            let mut ids: Vec<i64> = Vec::new();
            let mut was_back = false;
            loop {
                let msg = tokio::select! {
                    m = ws.next() => m,
                    _ = stopped.changed() => break,
                };
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(seen) = scan(text.as_str()) {
                            ids.push(seen.id);
                            cursor = cursor.max(seen.id);
                        }
                        continue;
                    }
                    Some(Ok(Message::Ping(p))) => {
                        let _ = ws.send(Message::Pong(p)).await;
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => {}
                }
                // Lost the connection: back off and resume from the cursor.
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff(attempt, jitter)) => {}
                        _ = stopped.changed() => return anyhow::Ok(ids),
                    }
                    match open(t.addr, &user, Some(cursor)).await {
                        Ok((new_ws, _)) => {
                            ws = new_ws;
                            reconnects.lock().unwrap().push(now_us());
                            if !was_back {
                                was_back = true;
                                back.fetch_add(1, Relaxed);
                            }
                            break;
                        }
                        Err(_) => {
                            failed.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
            anyhow::Ok(ids)
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    while ready.load(Relaxed) < clients as u64 {
        if Instant::now() > deadline || tasks.iter().any(|t| t.is_finished()) {
            let _ = stop.send(true);
            bail!("clients did not all connect");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A publisher at 20 messages/s through the whole run, retrying each message (same client
    // id) until acknowledged, across the restart.
    let published = Arc::new(AtomicU64::new(0));
    let (pub_stop, mut pub_stopped) = tokio::sync::watch::channel(false);
    let publishing = {
        let (publisher, room, published) = (publisher.clone(), room.clone(), published.clone());
        tokio::spawn(async move {
            let mut seq = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = pub_stopped.changed() => break,
                }
                seq += 1;
                loop {
                    let sent = async {
                        let mut h = Http::connect(t.addr).await?;
                        client::post_message(&mut h, &publisher, &room, seq).await
                    };
                    if matches!(sent.await, Ok(200 | 201)) {
                        published.fetch_add(1, Relaxed);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;

    let down_at = Instant::now();
    restart().await?;
    let ready_us = now_us();
    let down_ms = down_at.elapsed().as_secs_f64() * 1000.0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while back.load(Relaxed) < clients as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = pub_stop.send(true);
    publishing.await?;
    let published = published.load(Relaxed);
    // Let the last messages arrive.
    tokio::time::sleep(crate::scenarios::DRAIN).await;
    let _ = stop.send(true);

    let (mut missing, mut duplicates) = (0u64, 0u64);
    for task in tasks {
        let mut ids = task.await??;
        let n = ids.len() as u64;
        ids.sort_unstable();
        ids.dedup();
        duplicates += n - ids.len() as u64;
        missing += published.saturating_sub(ids.len() as u64);
    }
    let times = reconnects.lock().unwrap().clone();
    let mut buckets = std::collections::HashMap::<u64, u64>::new();
    for t in &times {
        *buckets.entry(t / 100_000).or_default() += 1;
    }
    Ok(StormReport {
        clients,
        jitter,
        down_ms,
        reconnect: summarize(times.iter().map(|t| t.saturating_sub(ready_us)).collect()),
        peak_per_100ms: buckets.values().copied().max().unwrap_or(0),
        failed_attempts: failed.load(Relaxed),
        back: back.load(Relaxed) as usize,
        published,
        missing,
        duplicates,
    })
}
