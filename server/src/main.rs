//! The `switchboard` binary: parse the configuration, start tracing, bind, and run.

use clap::Parser;
use server::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's allocator: every request and delivery allocates and frees many
/// small blocks, often on another thread than the one that made them; with glibc that was ~17%
/// of the server's CPU in a long-poll fan-out, part of it waiting on arena locks
/// (docs/BENCHMARKS.md). It also returns Argon2's 19 MiB blocks to the OS once freed, which
/// glibc needed an `mallopt` for.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
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
        Command::Seed {
            messages,
            rooms,
            users,
        } => {
            let opts = server::seed::SeedOptions {
                messages,
                rooms,
                users,
            };
            server::seed::seed(&config, opts).await
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
