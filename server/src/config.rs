//! Server configuration: one struct, filled from flags with environment fallbacks.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Switchboard: live chat and notifications over four transports."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the app (the default when no subcommand is given).
    Serve,
    /// Make an existing user an administrator, then exit.
    PromoteAdmin {
        /// The user's name.
        username: String,
    },
    /// Fill the database with people (seed0, seed1, … password "seed-password"), rooms and
    /// messages for measuring, then exit (adds to what is there).
    Seed {
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        #[arg(long, default_value_t = 200)]
        rooms: u32,
        #[arg(long, default_value_t = 2_000)]
        users: u32,
    },
}

/// How hard a commit waits for the disk (see [`Config::synchronous`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Synchronous {
    Normal,
    Full,
}

#[derive(Debug, Clone, Parser)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Database URL: `sqlite://path/to/file.db` (created if missing) for one server, or
    /// `postgres://user:password@host:5432/database` (the database must exist; its tables are
    /// created) for one or several servers sharing it.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/switchboard.db"
    )]
    pub database_url: String,

    /// Directory for files the server writes (exports go in `exports/` under it). Default: the
    /// SQLite file's directory, or `./data` with PostgreSQL.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Directory holding the built site (pkg/ with wasm, JS and CSS, plus static assets).
    #[arg(long, env = "SWITCHBOARD_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Mark the session cookie `Secure` (set when serving over HTTPS).
    #[arg(long, env = "SWITCHBOARD_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// SQLite's `synchronous` level (PostgreSQL commits are durable by its own settings): `normal` (in WAL mode a commit survives a crash of the
    /// process; the last commits may be lost on power loss) or `full` (a commit also survives
    /// power loss; each commit waits for the disk, shared by a whole group-commit batch).
    #[arg(long, env = "SWITCHBOARD_SYNCHRONOUS", value_enum, default_value_t = Synchronous::Normal)]
    pub synchronous: Synchronous,

    /// Open TCP connections at most (WebSockets included); beyond it new connections get an
    /// immediate 503 `server_full`.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", default_value_t = 50_000)]
    pub max_connections: usize,

    /// Live connections (WebSocket, SSE, polls in flight) per user at most; beyond it 429
    /// `too_many_connections`.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS_PER_USER",
        default_value_t = 100
    )]
    pub max_connections_per_user: u32,

    /// Seconds a client has to send a request's headers (on a new connection, or after the last
    /// response on a kept-alive one) before the connection is closed: slow-header attacks hold
    /// nothing for long.
    #[arg(long, env = "SWITCHBOARD_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Connections that have not yet shown a valid session (sign-in pages, a new connection's
    /// first request, an attacker's stalled ones) at most; past it the oldest of them is closed
    /// to make room, so they can never take the slots of signed-in users. Also kept to half of
    /// `--max-connections` and of the process's file-descriptor budget.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_ANONYMOUS_CONNECTIONS",
        default_value_t = 1024
    )]
    pub max_anonymous_connections: usize,

    /// Seconds a client has to send a request's whole body, however it trickles; past it the
    /// request is answered 408 `body_timeout` and the connection closed.
    #[arg(long, env = "SWITCHBOARD_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,

    /// Slowest body accepted, in bytes per second, after a first second of grace: a body that
    /// falls behind this rate is answered 408 `body_timeout` (0: no rate, the deadline only).
    #[arg(long, env = "SWITCHBOARD_BODY_MIN_RATE", default_value_t = 1024)]
    pub body_min_bytes_per_sec: u64,

    /// Seconds shutdown waits for open requests and connections before exiting anyway.
    #[arg(long, env = "SWITCHBOARD_DRAIN_SECS", default_value_t = 5)]
    pub drain_secs: u64,

    /// Largest number of pooled database connections.
    #[arg(long, env = "SWITCHBOARD_DB_POOL", default_value_t = 8)]
    pub db_pool: u32,

    /// How long a database statement waits for a lock held by someone else (SQLite's busy
    /// timeout, PostgreSQL's `lock_timeout`), in ms; past it the request answers 503
    /// `storage_unavailable` with `Retry-After`.
    #[arg(long, env = "SWITCHBOARD_DB_LOCK_TIMEOUT_MS", default_value_t = 5000)]
    pub db_lock_timeout_ms: u64,

    /// Login attempts allowed per client IP per minute.
    #[arg(long, env = "SWITCHBOARD_LOGIN_PER_IP", default_value_t = 20)]
    pub login_per_ip_per_minute: u32,

    /// Failed sign-ins per username per minute before that name is guarded: then an address
    /// that failed a sign-in within the minute is refused (429), and one with no recent
    /// failures is checked after `--login-slowdown-ms` (so a stranger cannot lock the owner out).
    #[arg(long, env = "SWITCHBOARD_LOGIN_PER_USER", default_value_t = 10)]
    pub login_per_user_per_minute: u32,

    /// The wait before a sign-in to a guarded username (see `--login-per-user-per-minute`) from
    /// an address with no recent failures is checked, in milliseconds.
    #[arg(long, env = "SWITCHBOARD_LOGIN_SLOWDOWN_MS", default_value_t = 1000)]
    pub login_slowdown_ms: u64,

    /// Accounts created per client IP per minute (0: no limit).
    #[arg(long, env = "SWITCHBOARD_SIGNUP_PER_IP", default_value_t = 30)]
    pub signup_per_ip_per_minute: u32,

    /// Chat messages one user may send per minute, over HTTP and WebSocket together (0: no
    /// limit; the load generator's spawned servers use 0).
    #[arg(long, env = "SWITCHBOARD_SENDS_PER_USER", default_value_t = 120)]
    pub sends_per_user_per_minute: u32,

    /// Largest file one upload may be, in bytes (413 past it, and nothing is kept).
    #[arg(long, env = "SWITCHBOARD_UPLOAD_MAX_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub upload_max_bytes: u64,

    /// Files one user may upload per minute (0: no limit).
    #[arg(long, env = "SWITCHBOARD_UPLOADS_PER_USER", default_value_t = 30)]
    pub uploads_per_user_per_minute: u32,

    /// Bytes one user may upload per day, all files together (0: no limit).
    #[arg(long, env = "SWITCHBOARD_UPLOAD_BYTES_PER_DAY", default_value_t = 500 * 1024 * 1024)]
    pub upload_bytes_per_user_per_day: u64,

    /// An upload no message carries is removed this long after it was made (seconds).
    #[arg(long, env = "SWITCHBOARD_UPLOAD_ORPHAN_SECS", default_value_t = 86_400)]
    pub upload_orphan_secs: u64,

    /// How often the server looks for such orphans (milliseconds).
    #[arg(long, env = "SWITCHBOARD_UPLOAD_SWEEP_MS", default_value_t = 600_000)]
    pub upload_sweep_ms: u64,

    /// Typing notices one user may send per minute, over HTTP and WebSocket together (0: no
    /// limit). WebSocket frames past it are dropped silently; HTTP answers 429.
    #[arg(long, env = "SWITCHBOARD_TYPING_PER_USER", default_value_t = 60)]
    pub typing_per_user_per_minute: u32,

    /// Reactions one user may add or remove per minute (0: no limit). Past it: 429.
    #[arg(long, env = "SWITCHBOARD_REACTIONS_PER_USER", default_value_t = 60)]
    pub reactions_per_user_per_minute: u32,

    /// Edits and deletions of messages one user may make per minute (0: no limit). Past it:
    /// 429. Each is an event every member of the room receives, like a message.
    #[arg(long, env = "SWITCHBOARD_EDITS_PER_USER", default_value_t = 60)]
    pub edits_per_user_per_minute: u32,

    /// Presence changes (idle/online) one user may send per minute, over HTTP and WebSocket
    /// together (0: no limit). WebSocket frames past it are dropped silently; HTTP answers 429.
    #[arg(long, env = "SWITCHBOARD_PRESENCE_PER_USER", default_value_t = 60)]
    pub presence_per_user_per_minute: u32,

    /// A WebSocket that sends this many presence and typing frames past its user's limits
    /// within a minute is closed with 1008 "too many presence or typing frames" (0: never).
    #[arg(long, env = "SWITCHBOARD_FLOOD_CLOSE_AFTER", default_value_t = 600)]
    pub flood_close_after: u32,

    /// Presence announcements are coalesced: each user's status goes out at most once per this
    /// many milliseconds (the latest one; none if it ended where it started).
    #[arg(long, env = "SWITCHBOARD_PRESENCE_COALESCE_MS", default_value_t = 500)]
    pub presence_coalesce_ms: u64,

    /// Rooms one user may create per hour (0: no limit).
    #[arg(
        long,
        env = "SWITCHBOARD_ROOMS_PER_USER_PER_HOUR",
        default_value_t = 30
    )]
    pub rooms_per_user_per_hour: u32,

    /// Jobs one user may submit per hour (0: no limit).
    #[arg(long, env = "SWITCHBOARD_JOBS_PER_USER_PER_HOUR", default_value_t = 60)]
    pub jobs_per_user_per_hour: u32,

    /// Jobs one user may have queued or running at once (0: no limit).
    #[arg(long, env = "SWITCHBOARD_JOBS_ACTIVE_PER_USER", default_value_t = 3)]
    pub jobs_active_per_user: u32,

    /// Announcements one administrator may send per hour (0: no limit).
    #[arg(
        long,
        env = "SWITCHBOARD_ANNOUNCEMENTS_PER_USER_PER_HOUR",
        default_value_t = 10
    )]
    pub announcements_per_user_per_hour: u32,

    /// `POST /api/live/stats` reports one user may send per minute (0: no limit); a tab sends
    /// one every 10 s.
    #[arg(long, env = "SWITCHBOARD_STATS_PER_USER", default_value_t = 30)]
    pub stats_per_user_per_minute: u32,

    /// A session unused this long ends, in seconds (default 30 days). Use renews it (a store
    /// write at most once per tenth of this per session; open live connections count as use).
    #[arg(long, env = "SWITCHBOARD_SESSION_IDLE_SECS", default_value_t = 30 * 86_400)]
    pub session_idle_secs: u64,

    /// A session ends this long after sign-in however much it is used, in seconds (default 90
    /// days).
    #[arg(long, env = "SWITCHBOARD_SESSION_MAX_SECS", default_value_t = 90 * 86_400)]
    pub session_max_secs: u64,

    /// Extra origins (scheme://host:port) allowed to make state-changing and live requests,
    /// besides the server's own Host. Comma-separated.
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Host names this server answers to (besides IP addresses and `localhost`, which it always
    /// does), against DNS rebinding: a request whose `Host` is any other name is refused.
    /// `name` allows any port, `name:port` that port; `*` allows every host (do that only behind
    /// a proxy that checks the host itself). Hosts of `--allowed-origins` are allowed too.
    /// Comma-separated.
    #[arg(long, env = "SWITCHBOARD_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Short-poll interval clients use, in milliseconds (an admin can change it at run time).
    #[arg(long, env = "SWITCHBOARD_SHORT_POLL_MS", default_value_t = 2000)]
    pub short_poll_ms: u32,

    /// How long a long poll is held, in seconds, 1–30 (an admin can change it at run time).
    #[arg(long, env = "SWITCHBOARD_LONG_POLL_SECS", default_value_t = 25)]
    pub long_poll_secs: u32,

    /// How long events stay in the log for resuming by cursor, in hours. Messages are kept
    /// regardless; a client whose cursor is older gets a `resync` and reloads.
    #[arg(long, env = "SWITCHBOARD_EVENT_RETENTION_HOURS", default_value_t = 168)]
    pub event_retention_hours: u64,

    /// How often old events are pruned, in milliseconds.
    #[arg(long, env = "SWITCHBOARD_PRUNE_EVERY_MS", default_value_t = 600_000)]
    pub prune_every_ms: u64,

    /// Test only: also serve `GET /api/live/echo`, a WebSocket echo behind the same session,
    /// origin checks and WebSocket settings as `/api/live/ws`, for the Autobahn conformance
    /// suite (`scripts/autobahn.sh`). Never turn it on in production.
    #[arg(
        long,
        env = "SWITCHBOARD_WS_ECHO",
        default_value_t = false,
        hide = true
    )]
    pub ws_echo: bool,

    /// Redis URL (`redis://127.0.0.1:6379`): joins a cluster of servers sharing one database,
    /// with Redis pub/sub as the backplane between them. Unset: a single server.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// The backplane's pub/sub channel: servers of one cluster share it; clusters sharing one
    /// Redis use different ones.
    #[arg(
        long,
        env = "SWITCHBOARD_CLUSTER_CHANNEL",
        default_value = "switchboard"
    )]
    pub cluster_channel: String,

    /// This server's name in the cluster (the admin console and logs show it). Default: host
    /// name and process id.
    #[arg(long, env = "SWITCHBOARD_NODE")]
    pub node: Option<String>,

    /// In a cluster: a server not heard from for this long counts as gone, and the jobs it held
    /// are failed by the others. Servers say they are alive three times per this period.
    #[arg(long, env = "SWITCHBOARD_NODE_TTL_SECS", default_value_t = 15)]
    pub node_ttl_secs: u64,

    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = "info,sqlx=warn,tower_sessions=warn"
    )]
    pub log: String,
}

impl Config {
    /// A configuration for tests: an ephemeral port and the given database file.
    pub fn for_tests(database_path: &std::path::Path) -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: format!("sqlite://{}", database_path.display()),
            data_dir: None,
            site_root: PathBuf::from("target/site"),
            secure_cookies: false,
            synchronous: Synchronous::Normal,
            max_connections: 50_000,
            max_connections_per_user: 100,
            header_timeout_secs: 10,
            max_anonymous_connections: 1024,
            body_timeout_secs: 30,
            body_min_bytes_per_sec: 1024,
            drain_secs: 5,
            db_pool: 4,
            db_lock_timeout_ms: 5000,
            login_per_ip_per_minute: 1000,
            login_per_user_per_minute: 1000,
            login_slowdown_ms: 50,
            signup_per_ip_per_minute: 1000,
            sends_per_user_per_minute: 100_000,
            upload_max_bytes: 10 * 1024 * 1024,
            uploads_per_user_per_minute: 100_000,
            upload_bytes_per_user_per_day: 0,
            upload_orphan_secs: 86_400,
            upload_sweep_ms: 600_000,
            typing_per_user_per_minute: 100_000,
            reactions_per_user_per_minute: 100_000,
            edits_per_user_per_minute: 100_000,
            presence_per_user_per_minute: 100_000,
            flood_close_after: 0,
            presence_coalesce_ms: 50,
            rooms_per_user_per_hour: 100_000,
            jobs_per_user_per_hour: 100_000,
            jobs_active_per_user: 0,
            announcements_per_user_per_hour: 100_000,
            stats_per_user_per_minute: 100_000,
            session_idle_secs: 30 * 86_400,
            session_max_secs: 90 * 86_400,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            short_poll_ms: 2000,
            long_poll_secs: 25,
            event_retention_hours: 168,
            prune_every_ms: 600_000,
            ws_echo: false,
            redis_url: None,
            cluster_channel: "switchboard".into(),
            node: None,
            node_ttl_secs: 15,
            log: "warn".into(),
        }
    }
}
