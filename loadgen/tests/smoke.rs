//! The load generator's smoke run against a real Switchboard (in this process, on an ephemeral
//! port, with a temporary SQLite file): every scenario at a tiny scale must complete with
//! nothing lost or refused. Figures are printed, never asserted.

use loadgen::scenarios::{self, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_against_a_real_server() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let config = server::config::Config::for_tests(&dir.path().join("smoke.db"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, config, async {
        let _ = stopped.await;
    }));
    scenarios::wait_healthy(addr, std::time::Duration::from_secs(30))
        .await
        .expect("healthy");
    let target = Target {
        addr,
        pid: Some(std::process::id()),
    };
    let lines = scenarios::smoke(target).await.expect("smoke run");
    for l in &lines {
        println!("{l}");
    }
    assert_eq!(lines.len(), 3 + 4 + 2 + 3 + 1, "every scenario reported");
    let _ = stop.send(());
    server.await.expect("server task").expect("server ran");
}
