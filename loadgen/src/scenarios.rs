//! The scenarios. Each is bounded in time and count, talks only to the target's address
//! (127.0.0.1), and returns what it measured for the caller to print.

use crate::client::{self, now_us, scan, Live, Transport, User};
use crate::http::Http;
use crate::stats::{cpu_ms, rss_kib, summarize, Summary};
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Connections per signed-up user: many users, but not one sign-up (an Argon2 hash) per
/// connection.
pub const CONNS_PER_USER: usize = 50;
/// Connections opened at once while setting up.
pub const OPEN_CONCURRENCY: usize = 200;
/// How long deliveries may trail the last publish before the rest count as lost.
pub const DRAIN: Duration = Duration::from_secs(5);
/// Latency samples kept per subscriber (the rest are counted, not timed).
const MAX_SAMPLES: usize = 200_000;

/// A unique prefix for this run's user names.
pub fn run_id() -> String {
    format!("{:x}", now_us() % 0xffff_ffff)
}

/// The server under load: its address and, when known, its process id (for memory).
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub addr: SocketAddr,
    pub pid: Option<u32>,
}

impl Target {
    pub fn rss_kib(&self) -> Option<u64> {
        self.pid.and_then(rss_kib)
    }
}

/// Waits until `GET /healthz` answers 200.
pub async fn wait_healthy(addr: SocketAddr, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(mut h) = Http::connect(addr).await {
            if let Ok(r) = h.request("GET", "/healthz", None, &[], None).await {
                if r.status == 200 {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            bail!("{addr} did not become healthy");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Users for `conns` connections.
pub(crate) async fn users_for(t: Target, run: &str, conns: usize) -> Result<Vec<User>> {
    let n = conns.div_ceil(CONNS_PER_USER).max(1);
    client::signup_many(t.addr, &format!("lg{run}u"), n).await
}

// ---------------------------------------------------------------------------------------------
// Idle connections

#[derive(Debug, Clone)]
pub struct IdleReport {
    pub transport: Transport,
    pub n: usize,
    pub opened: usize,
    pub setup_per_s: f64,
    pub rss_before_kib: Option<u64>,
    /// After the first half of the connections.
    pub rss_half_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    /// How many were open at the half-way reading.
    pub opened_half: usize,
}

impl IdleReport {
    pub fn kib_per_conn(&self) -> Option<f64> {
        match (self.rss_before_kib, self.rss_after_kib) {
            (Some(b), Some(a)) if self.opened > 0 => {
                Some((a as f64 - b as f64) / self.opened as f64)
            }
            _ => None,
        }
    }

    /// KiB per connection over the second half only. Memory the server freed before the run
    /// (sign-ups, earlier requests) but kept is reused by the first connections and makes the
    /// whole-run figure look smaller than a connection's cost; an allocator that keeps more
    /// (mimalloc keeps tens of MiB after the sign-ups) flatters it more. By the second half that
    /// pool is used up, so this is the marginal cost of one more connection.
    pub fn marginal_kib_per_conn(&self) -> Option<f64> {
        let more = self
            .opened
            .checked_sub(self.opened_half)
            .filter(|m| *m > 0)?;
        match (self.rss_half_kib, self.rss_after_kib) {
            (Some(h), Some(a)) => Some((a as f64 - h as f64) / more as f64),
            _ => None,
        }
    }
}

/// Opens `n` connections of `transport` (long polls stay parked) and reads the server's memory.
pub async fn idle(t: Target, transport: Transport, n: usize) -> Result<IdleReport> {
    let run = run_id();
    let users = users_for(t, &run, n).await?;
    let settle = Duration::from_millis(500);
    tokio::time::sleep(settle).await;
    let rss_before_kib = t.rss_kib();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // The second half opens when told, after the half-way memory reading.
    let (go_on, second_half) = tokio::sync::watch::channel(false);
    let half = n / 2;
    let gate = Arc::new(Semaphore::new(OPEN_CONCURRENCY));
    let opened = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let user = users[i % users.len()].clone();
        let (mut stopped, gate, opened) = (stopped.clone(), gate.clone(), opened.clone());
        let mut second_half = (i >= half).then(|| second_half.clone());
        tasks.push(tokio::spawn(async move {
            if let Some(go) = &mut second_half {
                go.wait_for(|go| *go).await.ok()?;
            }
            let permit = gate.acquire_owned().await.ok()?;
            let mut live = Live::open(t.addr, &user, transport, "chat").await.ok()?;
            drop(permit);
            opened.fetch_add(1, Relaxed);
            // Hold it: read whatever comes (pings, heartbeats, a long poll's timeout) until
            // told to stop. A read is never cancelled midway except at the end.
            loop {
                tokio::select! {
                    r = live.next_batch() => if r.is_err() { break },
                    _ = stopped.changed() => break,
                }
            }
            Some(())
        }));
    }
    let first = opened_up_to(&opened, &tasks, half).await;
    // Long polls go out right after their opening poll; give them and the server a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_half_kib = t.rss_kib();
    let opened_half = opened.load(Relaxed) as usize;
    let _ = go_on.send(true);
    let second = opened_up_to(&opened, &tasks, n).await;
    let took = first + second;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_kib = t.rss_kib();
    let _ = stop.send(true);
    let opened = opened.load(Relaxed) as usize;
    for task in tasks {
        task.abort();
    }
    Ok(IdleReport {
        transport,
        n,
        opened,
        setup_per_s: opened as f64 / took.as_secs_f64().max(1e-6),
        rss_before_kib,
        rss_half_kib,
        rss_after_kib,
        opened_half,
    })
}

/// Waits until the first `want` connections are open or have failed (a task that ended before
/// the stop failed to open), at most two minutes; how long it took.
async fn opened_up_to<T>(
    opened: &AtomicU64,
    tasks: &[tokio::task::JoinHandle<T>],
    want: usize,
) -> Duration {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(120);
    let settled = || {
        let failed = tasks[..want].iter().filter(|t| t.is_finished()).count();
        opened.load(Relaxed) as usize + failed >= want
    };
    while !settled() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------------------------
// Fan-out (and saturation: rate 0)

#[derive(Debug, Clone)]
pub struct FanoutReport {
    pub transport: Transport,
    pub subscribers: usize,
    pub rate: u32,
    pub secs: f64,
    pub sent: u64,
    pub send_errors: u64,
    pub received: u64,
    pub deliveries_per_s: f64,
    /// From the HTTP post to the subscriber's read.
    pub post_to_receive: Summary,
    /// From the stored commit time (ms resolution) to the subscriber's read.
    pub commit_to_receive: Summary,
    /// From the HTTP post to its `201` (the publisher's wait for the acknowledgement).
    pub post_to_ack: Summary,
    /// Per server, in the order given (one entry for a single server).
    pub servers: Vec<ServerSplit>,
    /// CPU time of the load generator itself over the same window.
    pub loadgen_cpu_ms: Option<f64>,
}

/// One server's share of a fan-out: its subscribers, what they received, and the CPU time the
/// server used from the first publish until the deliveries were drained.
#[derive(Debug, Clone)]
pub struct ServerSplit {
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    pub subscribers: usize,
    pub received: u64,
    pub commit_to_receive: Summary,
    pub cpu_ms: Option<f64>,
}

impl FanoutReport {
    pub fn expected(&self) -> u64 {
        self.sent * self.subscribers as u64
    }
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }
    /// CPU time of all servers together, when every server's process id is known (and they are
    /// not this process).
    pub fn servers_cpu_ms(&self) -> Option<f64> {
        let own = std::process::id();
        self.servers
            .iter()
            .map(|s| s.cpu_ms.filter(|_| s.pid != Some(own)))
            .sum()
    }
}

/// `subs` subscribers in one room on `transport`; a publisher posts `rate` messages/s over HTTP
/// for `secs` seconds (rate 0: as fast as `posters` connections can).
pub async fn fanout(
    t: Target,
    transport: Transport,
    subs: usize,
    rate: u32,
    secs: f64,
    posters: usize,
) -> Result<FanoutReport> {
    fanout_on(&[t], transport, subs, rate, secs, posters).await
}

/// [`fanout`] across the servers of a cluster: subscribers are spread round-robin over
/// `targets`; users sign up, the room is made and the publisher posts on the first server, so
/// every delivery on the others crossed the backplane.
pub async fn fanout_on(
    targets: &[Target],
    transport: Transport,
    subs: usize,
    rate: u32,
    secs: f64,
    posters: usize,
) -> Result<FanoutReport> {
    let Some(&t) = targets.first() else {
        bail!("no server to load");
    };
    let targets: Vec<Target> = targets.to_vec();
    let run = run_id();
    let users = users_for(t, &run, subs).await?;
    let publisher = client::signup(t.addr, &format!("lg{run}p")).await?;
    let room = client::create_room(t.addr, &publisher, &format!("lg-{run}")).await?;
    for u in &users {
        client::join(t.addr, u, &room).await?;
    }
    // One stop signal per subscriber: a shared watch channel would put every subscriber's
    // wake-up through one lock on every event it reads.
    let mut stops = Vec::with_capacity(subs);
    let received = Arc::new(AtomicU64::new(0));
    let per_server: Arc<Vec<AtomicU64>> =
        Arc::new(targets.iter().map(|_| AtomicU64::new(0)).collect());
    let last_receive_us = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(OPEN_CONCURRENCY));
    let mut tasks = Vec::with_capacity(subs);
    for i in 0..subs {
        let user = users[i % users.len()].clone();
        let server = i % targets.len();
        let addr = targets[server].addr;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        let (received, per_server, last, ready, gate) = (
            received.clone(),
            per_server.clone(),
            last_receive_us.clone(),
            ready.clone(),
            gate.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await?;
            let mut live = Live::open(addr, &user, transport, "chat")
                .await?
                .short_poll_ms(250);
            drop(permit);
            ready.fetch_add(1, Relaxed);
            let mut post = Vec::new();
            let mut commit = Vec::new();
            // Kept here and added to the shared counts once at the end (the shared `received`
            // is the only atomic touched per read: every subscriber on every core shares it).
            let (mut mine, mut last_now) = (0u64, 0u64);
            loop {
                let batch = tokio::select! {
                    biased;
                    b = live.next_batch() => b?,
                    _ = &mut stopped => break,
                };
                let now = now_us();
                let mut seen_here = 0;
                for ev in &batch {
                    let Some(seen) = scan(ev) else { continue };
                    let Some(sent) = seen.sent_us else { continue };
                    seen_here += 1;
                    if post.len() < MAX_SAMPLES {
                        post.push(now.saturating_sub(sent));
                        commit.push(now.saturating_sub(seen.ts_ms as u64 * 1000));
                    }
                }
                if seen_here > 0 {
                    received.fetch_add(seen_here, Relaxed);
                    mine += seen_here;
                    last_now = now;
                }
            }
            per_server[server].fetch_add(mine, Relaxed);
            last.fetch_max(last_now, Relaxed);
            anyhow::Ok((server, post, commit))
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while ready.load(Relaxed) < subs as u64 {
        if Instant::now() > deadline || tasks.iter().any(|t| t.is_finished()) {
            stops.clear(); // dropping the senders stops every subscriber
            for t in tasks {
                if let Ok(Err(e)) = t.await {
                    return Err(e.context("a subscriber failed to open"));
                }
            }
            bail!("subscribers did not all open");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Publish.
    let cpu_before: Vec<Option<f64>> = targets.iter().map(|t| t.pid.and_then(cpu_ms)).collect();
    let own_cpu_before = cpu_ms(std::process::id());
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_send_us = now_us();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let posters = posters.max(1);
    let mut pubs = Vec::new();
    for p in 0..posters {
        let (publisher, room, sent, errors) = (
            publisher.clone(),
            room.clone(),
            sent.clone(),
            errors.clone(),
        );
        pubs.push(tokio::spawn(async move {
            let mut h = Http::connect(t.addr).await?;
            // Each poster takes every `posters`-th slot of the schedule.
            let period = (rate > 0).then(|| Duration::from_secs_f64(posters as f64 / rate as f64));
            let mut next = Instant::now()
                + period.map_or(Duration::ZERO, |per| per.mul_f64(p as f64 / posters as f64));
            let mut seq = p as u64 * 1_000_000_000;
            let mut acks = Vec::new();
            while Instant::now() < end {
                if let Some(per) = period {
                    tokio::time::sleep_until(next.into()).await;
                    next += per;
                    if Instant::now() >= end {
                        break;
                    }
                }
                seq += 1;
                let posted = Instant::now();
                match client::post_message(&mut h, &publisher, &room, seq).await {
                    Ok(201) => {
                        sent.fetch_add(1, Relaxed);
                        if acks.len() < MAX_SAMPLES {
                            acks.push(posted.elapsed().as_micros() as u64);
                        }
                    }
                    Ok(_) => {
                        errors.fetch_add(1, Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Relaxed);
                        h = Http::connect(t.addr).await?;
                    }
                }
            }
            anyhow::Ok(acks)
        }));
    }
    let mut acks = Vec::new();
    for p in pubs {
        acks.extend(p.await??);
    }
    let sent = sent.load(Relaxed);
    let expected = sent * subs as u64;
    let drain_until = Instant::now() + DRAIN;
    while received.load(Relaxed) < expected && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu_after: Vec<Option<f64>> = targets.iter().map(|t| t.pid.and_then(cpu_ms)).collect();
    let own_cpu_after = cpu_ms(std::process::id());
    stops.clear(); // dropping the senders stops every subscriber
    let mut post = Vec::new();
    let mut commit = Vec::new();
    let mut commit_by_server: Vec<Vec<u64>> = targets.iter().map(|_| Vec::new()).collect();
    for task in tasks {
        match task.await {
            Ok(Ok((server, p, c))) => {
                post.extend(p);
                if targets.len() > 1 {
                    commit_by_server[server].extend_from_slice(&c);
                }
                commit.extend(c);
            }
            Ok(Err(e)) => eprintln!("a subscriber failed: {e:#}"),
            Err(e) => eprintln!("a subscriber panicked: {e}"),
        }
    }
    let received = received.load(Relaxed);
    let span_s = (last_receive_us.load(Relaxed).saturating_sub(first_send_us)) as f64 / 1e6;
    let commit_to_receive = summarize(commit);
    let servers = targets
        .iter()
        .zip(commit_by_server)
        .enumerate()
        .map(|(i, (t, c))| ServerSplit {
            addr: t.addr,
            pid: t.pid,
            subscribers: (i..subs).step_by(targets.len()).count(),
            received: per_server[i].load(Relaxed),
            commit_to_receive: if targets.len() > 1 {
                summarize(c)
            } else {
                commit_to_receive
            },
            cpu_ms: cpu_before[i].zip(cpu_after[i]).map(|(b, a)| a - b),
        })
        .collect();
    Ok(FanoutReport {
        transport,
        subscribers: subs,
        rate,
        secs,
        sent,
        send_errors: errors.load(Relaxed),
        received,
        deliveries_per_s: received as f64 / span_s.max(1e-6),
        post_to_receive: summarize(post),
        commit_to_receive,
        post_to_ack: summarize(acks),
        servers,
        loadgen_cpu_ms: own_cpu_before.zip(own_cpu_after).map(|(b, a)| a - b),
    })
}

// ---------------------------------------------------------------------------------------------
// Chat round trip

/// Alice sends `n` messages one after another (over her WebSocket, or HTTP); Bob receives each
/// on his WebSocket. Send-to-receive latency.
pub async fn roundtrip(t: Target, via_ws: bool, n: usize) -> Result<Summary> {
    let run = run_id();
    let alice = client::signup(t.addr, &format!("lg{run}a")).await?;
    let bob = client::signup(t.addr, &format!("lg{run}b")).await?;
    let room = client::create_room(t.addr, &alice, &format!("rt-{run}")).await?;
    client::join(t.addr, &bob, &room).await?;
    let mut rx = Live::open(t.addr, &bob, Transport::Websocket, "chat").await?;
    let mut ws = if via_ws {
        Some(Live::open(t.addr, &alice, Transport::Websocket, "chat").await?)
    } else {
        None
    };
    let mut http = Http::connect(t.addr).await?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        match ws.as_mut() {
            Some(ws) => ws.ws_send(&room, &format!("rt-{i}")).await?,
            None => {
                let status = client::post_message(&mut http, &alice, &room, i as u64).await?;
                if status != 201 {
                    bail!("send answered {status}");
                }
            }
        }
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                for ev in rx.next_batch().await? {
                    if let Some(s) = scan(&ev).and_then(|s| s.sent_us) {
                        return anyhow::Ok(now_us().saturating_sub(s));
                    }
                }
            }
        })
        .await
        .context("no delivery within 10 s")??;
        samples.push(got);
    }
    Ok(summarize(samples))
}

// ---------------------------------------------------------------------------------------------
// Polling cost

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollKind {
    /// Short polls with nothing new.
    Short,
    /// Job status with `If-None-Match`: 304s.
    Etag,
    /// Long polls answered by a steady stream of messages.
    Long,
}

impl std::str::FromStr for PollKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "short" => Ok(PollKind::Short),
            "etag" => Ok(PollKind::Etag),
            "long" => Ok(PollKind::Long),
            o => Err(format!("unknown poll kind {o}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PollReport {
    pub kind: PollKind,
    pub concurrency: usize,
    pub requests: u64,
    pub per_s: f64,
    pub latency: Summary,
    /// Answers other than the expected one (an empty 200, a 304, an answer with events).
    pub unexpected: u64,
    /// Long polls: events carried.
    pub events: u64,
}

pub async fn poll(t: Target, kind: PollKind, concurrency: usize, secs: f64) -> Result<PollReport> {
    let run = run_id();
    let users = users_for(t, &run, concurrency).await?;
    let owner = users[0].clone();
    // What each request asks for, and what it should get.
    let (path, expect, room) = match kind {
        PollKind::Short => {
            let mut h = Http::connect(t.addr).await?;
            let r = h
                .request(
                    "GET",
                    "/api/live/poll?feeds=jobs&wait=0",
                    Some(&owner.cookie),
                    &[],
                    None,
                )
                .await?;
            let cursor = r.json()["cursor"].as_i64().unwrap_or(0);
            (
                format!("/api/live/poll?feeds=jobs&wait=0&cursor={cursor}"),
                200,
                None,
            )
        }
        PollKind::Etag => {
            let mut h = Http::connect(t.addr).await?;
            let body = serde_json::json!({"kind": "demo", "steps": 1, "step_ms": 10}).to_string();
            let r = h
                .request(
                    "POST",
                    "/api/jobs",
                    Some(&owner.cookie),
                    &[],
                    Some(body.as_bytes()),
                )
                .await?;
            let id = r.json()["id"].as_str().unwrap_or_default().to_string();
            if id.is_empty() {
                bail!("job not created: {}", String::from_utf8_lossy(&r.body));
            }
            // Wait for it to finish: its ETag stops changing then.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let r = h
                    .request(
                        "GET",
                        &format!("/api/jobs/{id}"),
                        Some(&owner.cookie),
                        &[],
                        None,
                    )
                    .await?;
                if r.json()["state"] == "done" {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("demo job did not finish");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (format!("/api/jobs/{id}"), 304, None)
        }
        PollKind::Long => {
            let room = client::create_room(t.addr, &owner, &format!("lp-{run}")).await?;
            for u in &users[1..] {
                client::join(t.addr, u, &room).await?;
            }
            (String::new(), 200, Some(room))
        }
    };
    let etag = if kind == PollKind::Etag {
        let mut h = Http::connect(t.addr).await?;
        let r = h
            .request("GET", &path, Some(&owner.cookie), &[], None)
            .await?;
        r.header("etag").map(str::to_string)
    } else {
        None
    };
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let stop = Arc::new(AtomicBool::new(false));
    // Long polls need something to answer them: a steady publisher.
    let publisher = match &room {
        Some(room) => {
            let (owner, room, stop) = (owner.clone(), room.clone(), stop.clone());
            Some(tokio::spawn(async move {
                let mut h = Http::connect(t.addr).await?;
                let mut seq = 0;
                while !stop.load(Relaxed) {
                    seq += 1;
                    client::post_message(&mut h, &owner, &room, seq).await?;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                anyhow::Ok(())
            }))
        }
        None => None,
    };
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let user = users[i % users.len()].clone();
        let cookie = if kind == PollKind::Etag {
            owner.cookie.clone()
        } else {
            user.cookie.clone()
        };
        let (path, etag) = (path.clone(), etag.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut unexpected = 0u64;
            let mut events = 0u64;
            if kind == PollKind::Long {
                let mut live = Live::open(t.addr, &user, Transport::LongPoll, "chat").await?;
                while Instant::now() < end {
                    let t0 = now_us();
                    let batch = live.next_batch().await?;
                    lat.push(now_us() - t0);
                    events += batch.len() as u64;
                    if batch.is_empty() {
                        unexpected += 1;
                    }
                }
                return anyhow::Ok((lat, unexpected, events));
            }
            let mut h = Http::connect(t.addr).await?;
            let extra: Vec<(&str, &str)> = etag
                .as_deref()
                .map(|e| vec![("if-none-match", e)])
                .unwrap_or_default();
            while Instant::now() < end {
                let t0 = now_us();
                let r = h.request("GET", &path, Some(&cookie), &extra, None).await?;
                lat.push(now_us() - t0);
                let ok = r.status == expect
                    && (kind != PollKind::Short
                        || r.json()["events"].as_array().is_some_and(|e| e.is_empty()));
                if !ok {
                    unexpected += 1;
                }
            }
            anyhow::Ok((lat, unexpected, events))
        }));
    }
    let mut lat = Vec::new();
    let mut unexpected = 0;
    let mut events = 0;
    for task in tasks {
        let (l, u, e) = task.await??;
        lat.extend(l);
        unexpected += u;
        events += e;
    }
    let took = start.elapsed().as_secs_f64();
    stop.store(true, Relaxed);
    if let Some(p) = publisher {
        p.await??;
    }
    let requests = lat.len() as u64;
    Ok(PollReport {
        kind,
        concurrency,
        requests,
        per_s: requests as f64 / took.max(1e-6),
        latency: summarize(lat),
        unexpected,
        events,
    })
}

// ---------------------------------------------------------------------------------------------
// Durable writes

#[derive(Debug, Clone)]
pub struct WritesReport {
    pub senders: usize,
    pub acked: u64,
    pub failed: u64,
    pub per_s: f64,
    pub ack: Summary,
}

/// `senders` connections each posting messages back to back (into 10 rooms) for `secs`.
pub async fn writes(t: Target, senders: usize, secs: f64) -> Result<WritesReport> {
    let run = run_id();
    let users =
        client::signup_many(t.addr, &format!("lg{run}w"), senders.div_ceil(10).max(1)).await?;
    let mut rooms = Vec::new();
    for r in 0..10 {
        rooms.push(client::create_room(t.addr, &users[0], &format!("w{r}-{run}")).await?);
    }
    for u in &users[1..] {
        for r in &rooms {
            client::join(t.addr, u, r).await?;
        }
    }
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..senders {
        let user = users[i % users.len()].clone();
        let room = rooms[i % rooms.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Http::connect(t.addr).await?;
            let mut lat = Vec::new();
            let mut failed = 0u64;
            let mut seq = i as u64 * 1_000_000_000;
            while Instant::now() < end {
                seq += 1;
                let t0 = now_us();
                match client::post_message(&mut h, &user, &room, seq).await {
                    Ok(201) => lat.push(now_us() - t0),
                    Ok(_) => failed += 1,
                    Err(_) => {
                        failed += 1;
                        h = Http::connect(t.addr).await?;
                    }
                }
            }
            anyhow::Ok((lat, failed))
        }));
    }
    let mut lat = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (l, f) = task.await??;
        lat.extend(l);
        failed += f;
    }
    let took = start.elapsed().as_secs_f64();
    let acked = lat.len() as u64;
    Ok(WritesReport {
        senders,
        acked,
        failed,
        per_s: acked as f64 / took.max(1e-6),
        ack: summarize(lat),
    })
}

// ---------------------------------------------------------------------------------------------
// Mixed writes: messages, edits and reactions

#[derive(Debug, Clone)]
pub struct MixedReport {
    pub senders: usize,
    pub acked: u64,
    pub failed: u64,
    pub per_s: f64,
    /// Every acknowledged change, then each kind on its own.
    pub ack: Summary,
    pub sends: Summary,
    pub edits: Summary,
    pub reactions: Summary,
}

/// Emoji the mixed workload toggles (one PUT, then its DELETE).
const MIXED_EMOJI: [&str; 4] = ["%F0%9F%91%8D", "%F0%9F%8E%89", "%E2%9D%A4", "%F0%9F%9A%80"];

/// `senders` connections (into 10 rooms) each repeating, for `secs`: six sends, two edits of
/// its last message, two reaction changes on it (added, then removed). A change counts when
/// acknowledged (201, 200 or 204).
pub async fn mixed(t: Target, senders: usize, secs: f64) -> Result<MixedReport> {
    let run = run_id();
    let users =
        client::signup_many(t.addr, &format!("lg{run}x"), senders.div_ceil(10).max(1)).await?;
    let mut rooms = Vec::new();
    for r in 0..10 {
        rooms.push(client::create_room(t.addr, &users[0], &format!("x{r}-{run}")).await?);
    }
    for u in &users[1..] {
        for r in &rooms {
            client::join(t.addr, u, r).await?;
        }
    }
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..senders {
        let user = users[i % users.len()].clone();
        let room = rooms[i % rooms.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Http::connect(t.addr).await?;
            let mut lat: [Vec<u64>; 3] = Default::default();
            let mut failed = 0u64;
            let mut seq = i as u64 * 1_000_000_000;
            let mut last: Option<String> = None;
            let mut step = 0usize;
            while Instant::now() < end {
                step += 1;
                let t0 = now_us();
                let (kind, result) = match (step % 10, &last) {
                    (0..=5, _) | (_, None) => {
                        seq += 1;
                        let body = serde_json::json!({
                            "body": format!("lg {}", now_us()),
                            "client_id": format!("{}-{seq}", user.name),
                        })
                        .to_string();
                        let r = h
                            .request(
                                "POST",
                                &format!("/api/rooms/{room}/messages"),
                                Some(&user.cookie),
                                &[],
                                Some(body.as_bytes()),
                            )
                            .await;
                        if let Ok(r) = &r {
                            last = r.json()["id"].as_str().map(str::to_string).or(last);
                        }
                        (0, r.map(|r| r.status))
                    }
                    (6 | 7, Some(id)) => {
                        let body = serde_json::json!({ "body": format!("lg edited {}", now_us()) })
                            .to_string();
                        let r = h
                            .request(
                                "PATCH",
                                &format!("/api/rooms/{room}/messages/{id}"),
                                Some(&user.cookie),
                                &[],
                                Some(body.as_bytes()),
                            )
                            .await;
                        (1, r.map(|r| r.status))
                    }
                    (n, Some(id)) => {
                        // Step 8 adds an emoji, step 9 takes the same one away.
                        let emoji = MIXED_EMOJI[(step / 10) % MIXED_EMOJI.len()];
                        let method = if n == 8 { "PUT" } else { "DELETE" };
                        let r = h
                            .request(
                                method,
                                &format!("/api/rooms/{room}/messages/{id}/reactions/{emoji}"),
                                Some(&user.cookie),
                                &[],
                                None,
                            )
                            .await;
                        (2, r.map(|r| r.status))
                    }
                };
                match result {
                    Ok(200 | 201 | 204) => lat[kind].push(now_us() - t0),
                    Ok(_) => failed += 1,
                    Err(_) => {
                        failed += 1;
                        h = Http::connect(t.addr).await?;
                    }
                }
            }
            anyhow::Ok((lat, failed))
        }));
    }
    let mut lat: [Vec<u64>; 3] = Default::default();
    let mut failed = 0;
    for task in tasks {
        let (l, f) = task.await??;
        for (all, mine) in lat.iter_mut().zip(l) {
            all.extend(mine);
        }
        failed += f;
    }
    let took = start.elapsed().as_secs_f64();
    let every: Vec<u64> = lat.iter().flatten().copied().collect();
    let acked = every.len() as u64;
    let [sends, edits, reactions] = lat;
    Ok(MixedReport {
        senders,
        acked,
        failed,
        per_s: acked as f64 / took.max(1e-6),
        ack: summarize(every),
        sends: summarize(sends),
        edits: summarize(edits),
        reactions: summarize(reactions),
    })
}

// ---------------------------------------------------------------------------------------------
// Smoke: every scenario at a tiny scale, in seconds; an error if anything was lost or refused.

pub async fn smoke(t: Target) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for tr in [Transport::Websocket, Transport::Sse, Transport::LongPoll] {
        let r = idle(t, tr, 20).await?;
        if r.opened != 20 || r.opened_half != 10 {
            bail!(
                "idle {tr}: opened {} of 20 ({} of the first 10)",
                r.opened,
                r.opened_half
            );
        }
        out.push(format!(
            "idle {tr}: {} open, {:.0}/s",
            r.opened, r.setup_per_s
        ));
    }
    for tr in [
        Transport::Websocket,
        Transport::Sse,
        Transport::LongPoll,
        Transport::ShortPoll,
    ] {
        let r = fanout(t, tr, 5, 20, 1.0, 1).await?;
        if r.sent == 0 || r.lost() > 0 || r.send_errors > 0 {
            bail!(
                "fanout {tr}: sent {} lost {} errors {}",
                r.sent,
                r.lost(),
                r.send_errors
            );
        }
        out.push(format!(
            "fanout {tr}: {} delivered, {}",
            r.received, r.post_to_receive
        ));
    }
    for via_ws in [true, false] {
        let s = roundtrip(t, via_ws, 10).await?;
        if s.n != 10 {
            bail!("roundtrip: {} of 10", s.n);
        }
        out.push(format!(
            "roundtrip via {}: {s}",
            if via_ws { "ws" } else { "http" }
        ));
    }
    for kind in [PollKind::Short, PollKind::Etag, PollKind::Long] {
        let r = poll(t, kind, 4, 1.0).await?;
        if r.requests == 0 || (kind != PollKind::Long && r.unexpected > 0) {
            bail!(
                "poll {kind:?}: {} requests, {} unexpected",
                r.requests,
                r.unexpected
            );
        }
        out.push(format!(
            "poll {kind:?}: {} requests, {}",
            r.requests, r.latency
        ));
    }
    let w = writes(t, 4, 1.0).await?;
    if w.acked == 0 || w.failed > 0 {
        bail!("writes: {} acked, {} failed", w.acked, w.failed);
    }
    out.push(format!("writes: {} acked, {}", w.acked, w.ack));
    let m = mixed(t, 4, 1.0).await?;
    if m.sends.n == 0 || m.edits.n == 0 || m.reactions.n == 0 || m.failed > 0 {
        bail!(
            "mixed: {} sends, {} edits, {} reactions acked, {} failed",
            m.sends.n,
            m.edits.n,
            m.reactions.n,
            m.failed
        );
    }
    out.push(format!("mixed: {} acked, {}", m.acked, m.ack));
    Ok(out)
}

/// Fan-out across the servers of a cluster at a tiny scale, on every transport; an error if
/// anything was lost or refused.
pub async fn smoke_cluster(targets: &[Target]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for tr in [
        Transport::Websocket,
        Transport::Sse,
        Transport::LongPoll,
        Transport::ShortPoll,
    ] {
        let subs = 3 * targets.len();
        let r = fanout_on(targets, tr, subs, 20, 1.0, 1).await?;
        if r.sent == 0 || r.lost() > 0 || r.send_errors > 0 {
            bail!(
                "cluster fanout {tr}: sent {} lost {} errors {}",
                r.sent,
                r.lost(),
                r.send_errors
            );
        }
        let split: Vec<String> = r.servers.iter().map(|s| s.received.to_string()).collect();
        out.push(format!(
            "cluster fanout {tr} over {} servers: {} delivered ({} per server), {}",
            targets.len(),
            r.received,
            split.join(" + "),
            r.commit_to_receive
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Search and history on a seeded database (`switchboard seed`)

/// Latency of each search query and of history pages, as one seeded person.
pub struct SearchReport {
    /// (query, results on the first page, latency)
    pub queries: Vec<(String, usize, Summary)>,
    /// The newest page of a room's history.
    pub history: Summary,
    /// A page around a message found by search (opening a result).
    pub around: Summary,
}

/// `q` percent-encoded for a query string.
fn query_encode(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One GET: how long it took (µs) and its JSON; an error unless 200.
async fn timed_get(h: &mut Http, cookie: &str, path: &str) -> Result<(u64, serde_json::Value)> {
    let start = now_us();
    let r = h.request("GET", path, Some(cookie), &[], None).await?;
    let took = now_us().saturating_sub(start);
    if r.status != 200 {
        bail!(
            "GET {path}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    Ok((took, r.json()))
}

/// Signs in as `user` (a seeded person) and runs each query `n` times one after another on one
/// connection, then `n` history pages (newest, across the person's rooms) and `n` pages around
/// messages the searches found.
pub async fn search(
    t: Target,
    user: &str,
    password: &str,
    queries: &[String],
    n: usize,
) -> Result<SearchReport> {
    let cookie = crate::client::login(t.addr, user, password).await?.cookie;
    let mut h = Http::connect(t.addr).await?;
    let mut report = SearchReport {
        queries: Vec::new(),
        history: Summary::default(),
        around: Summary::default(),
    };
    let mut found: Vec<(String, String)> = Vec::new();
    for q in queries {
        let path = format!("/api/search?q={}", query_encode(q));
        let mut samples = Vec::with_capacity(n);
        let mut hits = 0;
        for _ in 0..n {
            let (took, v) = timed_get(&mut h, &cookie, &path).await?;
            samples.push(took);
            let results = v["results"].as_array().cloned().unwrap_or_default();
            hits = results.len();
            if found.len() < n {
                for r in &results {
                    let m = &r["message"];
                    if let (Some(room), Some(id)) = (m["room_id"].as_str(), m["id"].as_str()) {
                        found.push((room.to_string(), id.to_string()));
                    }
                }
            }
        }
        report.queries.push((q.clone(), hits, summarize(samples)));
    }
    let (_, rooms) = timed_get(&mut h, &cookie, "/api/rooms").await?;
    let mine: Vec<String> = rooms["rooms"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| r["is_member"].as_bool() == Some(true))
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    if !mine.is_empty() {
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            let path = format!("/api/rooms/{}/messages", mine[i % mine.len()]);
            samples.push(timed_get(&mut h, &cookie, &path).await?.0);
        }
        report.history = summarize(samples);
    }
    if !found.is_empty() {
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            let (room, id) = &found[i % found.len()];
            let path = format!("/api/rooms/{room}/messages?around={id}");
            samples.push(timed_get(&mut h, &cookie, &path).await?.0);
        }
        report.around = summarize(samples);
    }
    Ok(report)
}
