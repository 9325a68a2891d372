//! `loadgen`: load for a Switchboard server (or the bare floor) on this machine. Every run is
//! bounded in time and count, talks only to 127.0.0.1, and prints its parameters first.
//!
//! ```text
//! loadgen --spawn target/release/switchboard fanout --transport websocket --subs 1000 --rate 100
//! loadgen --addr 127.0.0.1:3000 --pid 1234 idle --transport sse --n 10000
//! ```

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use loadgen::client::Transport;
use loadgen::scenarios::{self, PollKind, Target};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Load for Switchboard (or the bare floor), with figures"
)]
struct Cli {
    /// A running server (loopback only).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// The running server's process id, for its memory (idle).
    #[arg(long)]
    pid: Option<u32>,
    /// Start this server binary (switchboard or floor) on a free port with a fresh database in a
    /// temporary directory, and stop it afterwards. Overrides --addr and --pid.
    #[arg(long)]
    spawn: Option<PathBuf>,
    /// Runs of the scenario; the figures of each run and their median are printed.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Clone)]
enum Scenario {
    /// N idle connections of one transport: server memory per connection, set-up rate.
    Idle {
        #[arg(long, default_value = "websocket")]
        transport: Transport,
        #[arg(long, default_value_t = 1000)]
        n: usize,
    },
    /// N subscribers in one room, a publisher at R messages/s: latency and deliveries/s.
    Fanout {
        #[arg(long, default_value = "websocket")]
        transport: Transport,
        #[arg(long, default_value_t = 1000)]
        subs: usize,
        #[arg(long, default_value_t = 100)]
        rate: u32,
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
    },
    /// Fan-out with the publisher posting as fast as it can: deliveries/s at saturation.
    Saturate {
        #[arg(long, default_value = "websocket")]
        transport: Transport,
        #[arg(long, default_value_t = 1000)]
        subs: usize,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        /// Connections posting back to back.
        #[arg(long, default_value_t = 4)]
        posters: usize,
    },
    /// Send over WebSocket or HTTP, receive on another client: p50/p99.
    Roundtrip {
        #[arg(long, default_value = "ws")]
        via: String,
        #[arg(long, default_value_t = 1000)]
        n: usize,
    },
    /// Polling cost: short polls with nothing new, job status 304s, or long-poll cycles.
    Poll {
        #[arg(long, default_value = "short")]
        kind: PollKind,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
    },
    /// Acknowledged messages per second with many senders, and the ack latency.
    Writes {
        #[arg(long, default_value_t = 100)]
        senders: usize,
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
    },
    /// Reconnect storm: N WebSocket clients, the server restarted (SIGTERM, same address and
    /// database) under them; reconnect spread, time until all are back, loss. Needs --spawn.
    Storm {
        #[arg(long, default_value_t = 2000)]
        clients: usize,
        /// Reconnect after the full backoff bound instead of a random delay under it.
        #[arg(long)]
        no_jitter: bool,
    },
    /// Every scenario at a tiny scale (seconds); fails on any loss or refusal.
    Smoke,
}

struct Spawned {
    child: tokio::process::Child,
    dir: PathBuf,
    bin: PathBuf,
    addr: SocketAddr,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn spawn(bin: &PathBuf) -> Result<(Target, Spawned)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let dir = std::env::temp_dir().join(format!("loadgen-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let child = start(bin, addr, &dir)?;
    let pid = child.id();
    let spawned = Spawned {
        child,
        dir,
        bin: bin.clone(),
        addr,
    };
    scenarios::wait_healthy(addr, Duration::from_secs(60)).await?;
    Ok((Target { addr, pid }, spawned))
}

fn start(bin: &PathBuf, addr: SocketAddr, dir: &std::path::Path) -> Result<tokio::process::Child> {
    tokio::process::Command::new(bin)
        .arg("--addr")
        .arg(addr.to_string())
        .arg("--database-url")
        .arg(format!("sqlite://{}/loadgen.db", dir.display()))
        .arg("--log")
        .arg("warn")
        // The scenarios sign up thousands of users from one IP and publish at high rates.
        .arg("--signup-per-ip-per-minute")
        .arg("0")
        .arg("--sends-per-user-per-minute")
        .arg("0")
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

impl Spawned {
    /// SIGTERM, wait for the exit, start again on the same address and database.
    async fn restart(&mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await?;
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("server did not exit after SIGTERM")??;
        self.child = start(&self.bin, self.addr, &self.dir)?;
        scenarios::wait_healthy(self.addr, Duration::from_secs(60)).await
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let (target, mut spawned) = match &cli.spawn {
        Some(bin) => {
            let (t, s) = spawn(bin).await?;
            (t, Some(s))
        }
        None => {
            if !cli.addr.ip().is_loopback() {
                bail!("loadgen talks to 127.0.0.1 only");
            }
            (
                Target {
                    addr: cli.addr,
                    pid: cli.pid,
                },
                None,
            )
        }
    };
    let server = cli
        .spawn
        .as_ref()
        .and_then(|b| b.file_name())
        .map_or("running server".to_string(), |n| {
            n.to_string_lossy().to_string()
        });
    println!(
        "loadgen · target {server} at {} (pid {}) · {} cores · repeat {}",
        target.addr,
        target.pid.map_or("unknown".into(), |p| p.to_string()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cli.repeat
    );
    let mut headline = Vec::new();
    for run in 1..=cli.repeat.max(1) {
        let label = format!("run {run}:");
        match cli.scenario.clone() {
            Scenario::Idle { transport, n } => {
                println!("idle transport={transport} n={n}");
                let r = scenarios::idle(target, transport, n).await?;
                let per = r.kib_per_conn();
                println!(
                    "{label} opened {}/{} · set-up {:.0} conn/s · server RSS {} → {} KiB · {} KiB per connection",
                    r.opened,
                    r.n,
                    r.setup_per_s,
                    r.rss_before_kib.map_or("?".into(), |v| v.to_string()),
                    r.rss_after_kib.map_or("?".into(), |v| v.to_string()),
                    per.map_or("?".into(), |v| format!("{v:.1}"))
                );
                headline.push(per.unwrap_or(0.0));
            }
            Scenario::Fanout {
                transport,
                subs,
                rate,
                secs,
            } => {
                println!("fanout transport={transport} subs={subs} rate={rate}/s secs={secs}");
                let posters = (rate as usize / 50).clamp(1, 16);
                let r = scenarios::fanout(target, transport, subs, rate, secs, posters).await?;
                print_fanout(&label, &r);
                headline.push(r.post_to_receive.p99_ms);
            }
            Scenario::Saturate {
                transport,
                subs,
                secs,
                posters,
            } => {
                println!(
                    "saturate transport={transport} subs={subs} secs={secs} posters={posters}"
                );
                let r = scenarios::fanout(target, transport, subs, 0, secs, posters).await?;
                print_fanout(&label, &r);
                headline.push(r.deliveries_per_s);
            }
            Scenario::Roundtrip { via, n } => {
                println!("roundtrip via={via} n={n}");
                let s = scenarios::roundtrip(target, via == "ws", n).await?;
                println!("{label} send→receive {s}");
                headline.push(s.p99_ms);
            }
            Scenario::Poll {
                kind,
                concurrency,
                secs,
            } => {
                println!("poll kind={kind:?} concurrency={concurrency} secs={secs}");
                let r = scenarios::poll(target, kind, concurrency, secs).await?;
                println!(
                    "{label} {} requests · {:.0} requests/s · {} · unexpected answers {}{}",
                    r.requests,
                    r.per_s,
                    r.latency,
                    r.unexpected,
                    if kind == PollKind::Long {
                        format!(
                            " · {} events, {:.2} per answer",
                            r.events,
                            r.events as f64 / r.requests.max(1) as f64
                        )
                    } else {
                        String::new()
                    }
                );
                headline.push(r.per_s);
            }
            Scenario::Writes { senders, secs } => {
                println!("writes senders={senders} secs={secs}");
                let r = scenarios::writes(target, senders, secs).await?;
                println!(
                    "{label} {} acknowledged ({} failed) · {:.0} messages/s · ack {}",
                    r.acked, r.failed, r.per_s, r.ack
                );
                headline.push(r.per_s);
            }
            Scenario::Storm { clients, no_jitter } => {
                println!("storm clients={clients} jitter={}", !no_jitter);
                let Some(server) = spawned.as_mut() else {
                    bail!("storm restarts the server: use --spawn");
                };
                let r =
                    loadgen::storm::storm(target, clients, !no_jitter, || server.restart()).await?;
                println!(
                    "{label} down {:.0} ms · back {}/{} · reconnect after ready {} · peak {} per 100 ms · {} failed attempts · {} published · missing {} · duplicates {}",
                    r.down_ms,
                    r.back,
                    r.clients,
                    r.reconnect,
                    r.peak_per_100ms,
                    r.failed_attempts,
                    r.published,
                    r.missing,
                    r.duplicates
                );
                headline.push(r.reconnect.p99_ms);
            }
            Scenario::Smoke => {
                println!("smoke");
                for line in scenarios::smoke(target).await? {
                    println!("  {line}");
                }
                headline.push(0.0);
            }
        }
    }
    if cli.repeat > 1 {
        println!(
            "median of {} runs (headline figure): {:.2}",
            headline.len(),
            median(headline)
        );
    }
    Ok(())
}

fn print_fanout(label: &str, r: &scenarios::FanoutReport) {
    println!(
        "{label} sent {} ({} send errors) · delivered {}/{} (lost {}) · {:.0} deliveries/s",
        r.sent,
        r.send_errors,
        r.received,
        r.expected(),
        r.lost(),
        r.deliveries_per_s
    );
    println!("  post→receive {}", r.post_to_receive);
    println!("  commit→receive {}", r.commit_to_receive);
}
