//! What the multi-server tests run on: a fresh PostgreSQL database of their own on the machine's
//! server, and a Redis server of their own (a `redis-server` child on an ephemeral port, so a
//! test can stop and restart it without touching anybody else's). Where either is missing the
//! test is skipped with a printed reason.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The PostgreSQL server the tests create their databases on (trust auth).
pub fn postgres_server() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into())
}

/// Prints why a test did not run (so a skip is never silent).
pub fn skip(test: &str, reason: &str) {
    println!("SKIPPED {test}: {reason}");
    eprintln!("SKIPPED {test}: {reason}");
}

/// A database of the test's own, dropped afterwards.
pub struct Database {
    pub url: String,
    name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

fn psql(server: &str, sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .arg(format!("{server}/postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("psql could not run ({e})"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

impl Database {
    /// A fresh PostgreSQL database, or (with `SWITCHBOARD_CLUSTER_SQLITE=1`, for working on a
    /// machine without PostgreSQL) one SQLite file shared by the processes.
    pub fn create() -> Result<Database, String> {
        if std::env::var("SWITCHBOARD_CLUSTER_SQLITE").is_ok_and(|v| v == "1") {
            let dir = tempfile::TempDir::new().map_err(|e| e.to_string())?;
            let path: PathBuf = dir.path().join("cluster.db");
            return Ok(Database {
                url: format!("sqlite://{}", path.display()),
                name: None,
                _dir: Some(dir),
            });
        }
        let server = postgres_server();
        let name = format!("sbc_{}", uuid::Uuid::new_v4().simple());
        psql(&server, &format!("CREATE DATABASE {name}"))
            .map_err(|e| format!("PostgreSQL at {server} is not usable: {e}"))?;
        Ok(Database {
            url: format!("{server}/{name}"),
            name: Some(name),
            _dir: None,
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(name) = &self.name {
            let _ = psql(
                &postgres_server(),
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// A Redis server of the test's own.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Result<Redis, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut redis = Redis { child: None, port };
        redis.restart()?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port and waits until it answers PING.
    pub fn restart(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server could not start ({e})"))?;
        self.child = Some(child);
        let deadline = Instant::now() + super::WAIT;
        while Instant::now() < deadline {
            if self.ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("redis-server did not answer PING".into())
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// Kills it (SIGKILL: what a crash or a network cut looks like to its clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
