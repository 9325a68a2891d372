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
    assert_eq!(
        lines.len(),
        3 + 4 + 2 + 3 + 1 + 1,
        "every scenario reported"
    );
    let _ = stop.send(());
    server.await.expect("server task").expect("server ran");
}

/// The multi-server fan-out at a tiny scale: two Switchboard servers in this process sharing one
/// SQLite file, joined by the Redis on 127.0.0.1:6379 (or `SWITCHBOARD_TEST_REDIS`) on a channel
/// of this run's own. Skipped, with the reason printed, when Redis is not reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_fanout_runs_across_two_servers() {
    let redis = std::env::var("SWITCHBOARD_TEST_REDIS")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let hostport = redis
        .trim_start_matches("redis://")
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    if let Err(e) = tokio::net::TcpStream::connect(&hostport).await {
        println!("SKIPPED cluster_fanout_runs_across_two_servers: Redis at {redis} is not reachable ({e})");
        eprintln!("SKIPPED cluster_fanout_runs_across_two_servers: Redis at {redis} is not reachable ({e})");
        return;
    }
    let dir = tempfile::TempDir::new().expect("temp dir");
    let channel = format!(
        "loadgen-smoke-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    );
    let mut stops = Vec::new();
    let mut servers = Vec::new();
    let mut targets = Vec::new();
    // One after another: the first creates the schema.
    for node in ["a", "b"] {
        let mut config = server::config::Config::for_tests(&dir.path().join("cluster.db"));
        config.redis_url = Some(redis.clone());
        config.cluster_channel = channel.clone();
        config.node = Some(node.into());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        servers.push(tokio::spawn(server::run(listener, config, async {
            let _ = stopped.await;
        })));
        stops.push(stop);
        scenarios::wait_healthy(addr, std::time::Duration::from_secs(30))
            .await
            .expect("healthy");
        targets.push(Target { addr, pid: None });
    }
    let lines = scenarios::smoke_cluster(&targets)
        .await
        .expect("cluster smoke run");
    for l in &lines {
        println!("{l}");
    }
    assert_eq!(lines.len(), 4, "every transport reported");
    for stop in stops {
        let _ = stop.send(());
    }
    for s in servers {
        s.await.expect("server task").expect("server ran");
    }
}
