//! The `switchboard` binary: parse the configuration, start tracing, bind, and run.

use clap::Parser;
use server::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

/// glibc raises its mmap threshold after large blocks are freed, so Argon2's 19 MiB blocks
/// end up in per-thread heaps it never returns (hundreds of MiB after a burst of sign-ins). A
/// fixed threshold keeps large blocks mapped on their own and gives them back when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        // Setting the mmap threshold also pins the trim threshold at 128 KiB, which would hand
        // the heap top back to the OS (and fault it in again) all the time under load.
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn main() -> anyhow::Result<()> {
    tune_malloc();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli.config;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.addr).await?;
            server::run(listener, config, shutdown_signal()).await
        }
        Command::PromoteAdmin { username } => {
            let user = server::promote_admin(&config, &username).await?;
            println!("{} is now an administrator", user.username);
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
