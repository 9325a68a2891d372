//! `loadgen`: load for a Switchboard server (or the bare floor) on this machine. Every run is
//! bounded in time and count, talks only to 127.0.0.1, and prints its parameters first.
//!
//! ```text
//! loadgen --spawn target/release/switchboard fanout --transport websocket --subs 1000 --rate 100
//! loadgen --addr 127.0.0.1:3000 --pid 1234 idle --transport sse --n 10000
//! loadgen --spawn target/release/switchboard --servers 3 --redis-url redis://127.0.0.1:6379 \
//!     fanout --transport websocket --subs 1000 --rate 100
//! loadgen --addrs 127.0.0.1:4101,127.0.0.1:4102 --pids 11,12 fanout
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
    /// The running server's process id, for its memory (idle) and CPU time (fanout, saturate).
    #[arg(long)]
    pid: Option<u32>,
    /// Running servers of one cluster (comma-separated; overrides --addr). Fan-out and
    /// saturation spread their subscribers round-robin over them and publish on the first; the
    /// other scenarios use the first.
    #[arg(long, value_delimiter = ',')]
    addrs: Vec<SocketAddr>,
    /// Their process ids, in the same order (for CPU time per server).
    #[arg(long, value_delimiter = ',')]
    pids: Vec<u32>,
    /// Start this server binary (switchboard or floor) on a free port with a fresh database in a
    /// temporary directory, and stop it afterwards. Overrides --addr and --pid.
    #[arg(long)]
    spawn: Option<PathBuf>,
    /// With --spawn: start this many Switchboard servers sharing one database, joined by the
    /// Redis backplane (--redis-url, needed for more than one), each on its own port.
    #[arg(long, default_value_t = 1)]
    servers: usize,
    /// With --spawn: the spawned servers join a cluster through this Redis (a channel of this
    /// run's own). With --servers 1, measures what the backplane costs a lone server.
    #[arg(long)]
    redis_url: Option<String>,
    /// With --spawn: the database the spawned servers share (e.g. a fresh PostgreSQL database
    /// you created). Default: a fresh SQLite file in the temporary directory.
    #[arg(long)]
    database_url: Option<String>,
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
    /// A mixed workload through the group writer: each sender posts messages, edits its last
    /// one and toggles reactions on it (6 : 2 : 2), back to back; acknowledged changes per
    /// second and the ack latency of each kind. Plain sends alone: `writes`.
    Mixed {
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
    /// Search and history latency on a seeded database (`switchboard seed`), as one seeded
    /// person: each query `n` times, then `n` history pages and `n` pages around found messages.
    Search {
        #[arg(long, default_value = "seed0")]
        user: String,
        #[arg(long, default_value = "seed-password")]
        password: String,
        /// Queries (comma-separated). The defaults are the seed's commonest word, a word of
        /// rank 1000, one of rank 20000 and a prefix.
        #[arg(long, value_delimiter = ',', default_value = "the,rabuve,dacuve,mag*")]
        queries: Vec<String>,
        #[arg(long, default_value_t = 200)]
        n: usize,
    },
    /// Every scenario at a tiny scale (seconds); fails on any loss or refusal.
    Smoke,
}

/// How spawned servers are set up.
#[derive(Clone)]
struct SpawnSpec {
    bin: PathBuf,
    dir: PathBuf,
    database_url: String,
    redis_url: Option<String>,
    channel: String,
}

struct Spawned {
    child: tokio::process::Child,
    addr: SocketAddr,
    node: String,
}

/// The spawned servers and their temporary directory (removed when dropped).
struct SpawnedCluster {
    servers: Vec<Spawned>,
    spec: SpawnSpec,
    dir: PathBuf,
}

impl Drop for SpawnedCluster {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_addr() -> Result<SocketAddr> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("127.0.0.1:{port}").parse()?)
}

async fn spawn(
    bin: &std::path::Path,
    n: usize,
    redis_url: Option<String>,
    database_url: Option<String>,
) -> Result<(Vec<Target>, SpawnedCluster)> {
    let first = free_addr()?;
    let dir = std::env::temp_dir().join(format!("loadgen-{}-{}", std::process::id(), first.port()));
    std::fs::create_dir_all(&dir)?;
    let spec = SpawnSpec {
        bin: bin.to_path_buf(),
        dir: dir.clone(),
        database_url: database_url
            .unwrap_or_else(|| format!("sqlite://{}/loadgen.db", dir.display())),
        redis_url,
        channel: format!("loadgen-{}-{}", std::process::id(), first.port()),
    };
    let mut cluster = SpawnedCluster {
        servers: Vec::new(),
        spec,
        dir,
    };
    let mut targets = Vec::new();
    // One after another: the first creates the schema, the others find it.
    for i in 0..n.max(1) {
        let addr = if i == 0 { first } else { free_addr()? };
        let node = format!("lg{}", i + 1);
        let child = start(&cluster.spec, addr, &node)?;
        let pid = child.id();
        cluster.servers.push(Spawned { child, addr, node });
        scenarios::wait_healthy(addr, Duration::from_secs(60)).await?;
        targets.push(Target { addr, pid });
    }
    Ok((targets, cluster))
}

fn start(spec: &SpawnSpec, addr: SocketAddr, node: &str) -> Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new(&spec.bin);
    cmd.arg("--addr")
        .arg(addr.to_string())
        .arg("--database-url")
        .arg(&spec.database_url)
        .arg("--log")
        .arg("warn")
        // The scenarios sign up thousands of users from one IP and publish at high rates.
        .arg("--signup-per-ip-per-minute")
        .arg("0")
        .arg("--sends-per-user-per-minute")
        .arg("0")
        .arg("--reactions-per-user-per-minute")
        .arg("0")
        .arg("--edits-per-user-per-minute")
        .arg("0")
        .kill_on_drop(true);
    if !spec.database_url.starts_with("sqlite:") {
        // Files the server writes (exports) go to the run's directory, not ./data.
        cmd.arg("--data-dir").arg(&spec.dir);
    }
    if let Some(redis) = &spec.redis_url {
        cmd.arg("--redis-url")
            .arg(redis)
            .arg("--cluster-channel")
            .arg(&spec.channel)
            .arg("--node")
            .arg(node);
    }
    cmd.spawn()
        .with_context(|| format!("starting {}", spec.bin.display()))
}

impl SpawnedCluster {
    /// SIGTERM the first server, wait for the exit, start it again on the same address and
    /// database.
    async fn restart(&mut self) -> Result<()> {
        let spec = self.spec.clone();
        let server = &mut self.servers[0];
        if let Some(pid) = server.child.id() {
            tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await?;
        }
        tokio::time::timeout(Duration::from_secs(30), server.child.wait())
            .await
            .context("server did not exit after SIGTERM")??;
        server.child = start(&spec, server.addr, &server.node)?;
        scenarios::wait_healthy(server.addr, Duration::from_secs(60)).await
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

/// mimalloc, as in the server: the generator's small per-event allocations cost less of the CPU
/// it shares with the server it measures. The floor (`src/bin/floor.rs`) keeps glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.servers > 1 && cli.redis_url.is_none() {
        bail!(
            "--servers {} needs --redis-url (the backplane)",
            cli.servers
        );
    }
    if cli.spawn.is_none() && (cli.servers > 1 || cli.redis_url.is_some()) {
        bail!("--servers and --redis-url go with --spawn; for running servers use --addrs");
    }
    let (targets, mut spawned) = match &cli.spawn {
        Some(bin) => {
            let (t, s) = spawn(
                bin,
                cli.servers,
                cli.redis_url.clone(),
                cli.database_url.clone(),
            )
            .await?;
            (t, Some(s))
        }
        None if !cli.addrs.is_empty() => {
            if cli.addrs.iter().any(|a| !a.ip().is_loopback()) {
                bail!("loadgen talks to 127.0.0.1 only");
            }
            if !cli.pids.is_empty() && cli.pids.len() != cli.addrs.len() {
                bail!("--pids needs one process id per --addrs entry");
            }
            let targets = cli
                .addrs
                .iter()
                .enumerate()
                .map(|(i, &addr)| Target {
                    addr,
                    pid: cli.pids.get(i).copied(),
                })
                .collect();
            (targets, None)
        }
        None => {
            if !cli.addr.ip().is_loopback() {
                bail!("loadgen talks to 127.0.0.1 only");
            }
            (
                vec![Target {
                    addr: cli.addr,
                    pid: cli.pid,
                }],
                None,
            )
        }
    };
    let target = targets[0];
    let server = cli
        .spawn
        .as_ref()
        .and_then(|b| b.file_name())
        .map_or("running server".to_string(), |n| {
            n.to_string_lossy().to_string()
        });
    let backplane = match (&spawned, &cli.redis_url) {
        (Some(s), Some(redis)) => format!(
            " · backplane {redis} channel {} · database {}",
            s.spec.channel, s.spec.database_url
        ),
        (Some(s), None) => format!(" · no backplane · database {}", s.spec.database_url),
        _ => String::new(),
    };
    let list: Vec<String> = targets
        .iter()
        .map(|t| {
            format!(
                "{} (pid {})",
                t.addr,
                t.pid.map_or("unknown".into(), |p| p.to_string())
            )
        })
        .collect();
    println!(
        "loadgen · target {server}{} at {}{backplane} · {} cores · repeat {}",
        if targets.len() > 1 {
            format!(" ×{}", targets.len())
        } else {
            String::new()
        },
        list.join(", "),
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
                    "{label} opened {}/{} · set-up {:.0} conn/s · server RSS {} → {} → {} KiB · {} KiB per connection · {} KiB per connection of the second half",
                    r.opened,
                    r.n,
                    r.setup_per_s,
                    r.rss_before_kib.map_or("?".into(), |v| v.to_string()),
                    r.rss_half_kib.map_or("?".into(), |v| v.to_string()),
                    r.rss_after_kib.map_or("?".into(), |v| v.to_string()),
                    per.map_or("?".into(), |v| format!("{v:.1}")),
                    r.marginal_kib_per_conn().map_or("?".into(), |v| format!("{v:.1}"))
                );
                // The second half's figure: the first connections reuse memory the server freed
                // but kept, which the whole-run figure would count as free.
                headline.push(r.marginal_kib_per_conn().or(per).unwrap_or(0.0));
            }
            Scenario::Fanout {
                transport,
                subs,
                rate,
                secs,
            } => {
                println!("fanout transport={transport} subs={subs} rate={rate}/s secs={secs}");
                let posters = (rate as usize / 50).clamp(1, 16);
                let r =
                    scenarios::fanout_on(&targets, transport, subs, rate, secs, posters).await?;
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
                let r = scenarios::fanout_on(&targets, transport, subs, 0, secs, posters).await?;
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
            Scenario::Mixed { senders, secs } => {
                println!("mixed senders={senders} secs={secs}");
                let r = scenarios::mixed(target, senders, secs).await?;
                println!(
                    "{label} {} acknowledged ({} failed) · {:.0} changes/s · ack {} · sends {} · edits {} · reactions {}",
                    r.acked, r.failed, r.per_s, r.ack, r.sends, r.edits, r.reactions
                );
                headline.push(r.per_s);
            }
            Scenario::Storm { clients, no_jitter } => {
                println!("storm clients={clients} jitter={}", !no_jitter);
                let Some(server) = spawned.as_mut() else {
                    bail!("storm restarts the server: use --spawn");
                };
                if targets.len() > 1 {
                    bail!("storm restarts one server: use --servers 1");
                }
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
            Scenario::Search {
                user,
                password,
                queries,
                n,
            } => {
                println!("search user={user} queries={queries:?} n={n}");
                let r = scenarios::search(target, &user, &password, &queries, n).await?;
                for (q, hits, s) in &r.queries {
                    println!("{label} search {q:?} ({hits} on the first page): {s}");
                    headline.push(s.p99_ms);
                }
                println!("{label} history (newest page): {}", r.history);
                println!("{label} history around a found message: {}", r.around);
            }
            Scenario::Smoke => {
                println!("smoke");
                for line in scenarios::smoke(target).await? {
                    println!("  {line}");
                }
                if targets.len() > 1 {
                    for line in scenarios::smoke_cluster(&targets).await? {
                        println!("  {line}");
                    }
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
    println!("  post→201 {}", r.post_to_ack);
    let ms = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.0} ms"));
    if r.servers.len() > 1 {
        for (i, s) in r.servers.iter().enumerate() {
            println!(
                "  server {} {}{}: {} subscribers · delivered {} · commit→receive {} · CPU {}",
                i + 1,
                s.addr,
                if i == 0 { " (publisher's)" } else { "" },
                s.subscribers,
                s.received,
                s.commit_to_receive,
                ms(s.cpu_ms)
            );
        }
    }
    if let Some(cpu) = r.servers_cpu_ms() {
        println!(
            "  server CPU {cpu:.0} ms in all · {:.3} ms per message · {:.2} µs per delivery · loadgen CPU {}",
            cpu / r.sent.max(1) as f64,
            cpu * 1000.0 / r.received.max(1) as f64,
            ms(r.loadgen_cpu_ms)
        );
    }
}
