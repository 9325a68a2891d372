//! The real `switchboard` binary as a child process, for what only a process can show: SIGKILL,
//! SIGTERM, and the runtime's own counters without the test's tasks mixed in.

use super::{Client, WAIT};
use reqwest::cookie::Jar;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Arc;

pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts the server on `db` (created if missing; on PostgreSQL, a database of its own) on an ephemeral port, with extra flags.
    pub fn start(db: &Path, args: &[&str]) -> ServerProcess {
        let mut all: Vec<String> = data_dir_args(db)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        Self::start_url(&super::database_url(db), &all)
    }

    /// Starts the server on the database at `url` on an ephemeral port, with extra flags.
    pub fn start_url(url: &str, args: &[&str]) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "--addr",
                "127.0.0.1:0",
                "--log",
                "info,sqlx=warn,tower_sessions=warn",
            ])
            .arg("--database-url")
            .arg(url)
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the switchboard binary");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the log to its end (so the child never blocks on a full pipe), reporting the
        // address from the `listening` line.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let plain = strip_ansi(&line);
                if plain.contains("listening") {
                    if let Some(addr) = plain
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("addr="))
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                    {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(addr);
                        }
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(WAIT)
            .expect("the server reports its address");
        ServerProcess { child, addr }
    }

    /// A client for this server sharing `jar` (cookies carry over to a restarted server).
    pub fn client(&self, jar: &Arc<Jar>) -> Client {
        let origin = super::same_origin(&format!("http://{}", self.addr));
        Client::new(jar.clone(), self.addr, origin)
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM; returns once the process has exited (or panics after [`WAIT`]).
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "signal sent");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server exits after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// On PostgreSQL, files the server writes go beside where the SQLite file would be.
fn data_dir_args(db: &Path) -> Vec<std::ffi::OsString> {
    match (super::postgres_base(), db.parent()) {
        (Some(_), Some(dir)) => vec!["--data-dir".into(), dir.as_os_str().to_owned()],
        _ => Vec::new(),
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ … final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
