//! The accept loop: HTTP/1.1 connections served by hyper with a header-read timeout (slow-header
//! clients are cut off, and so are kept-alive connections idle that long), a global connection
//! cap that answers the excess at once with a 503, and a graceful shutdown: the listener closes
//! first (new connections are refused), live connections are told to go (see
//! `AppState::shutdown`), open requests finish, and after the drain time the rest are dropped.

use crate::limits::{ConnSlot, Limits};
use crate::refusals::JsonRefusals;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// A connection whose written data stays unacknowledged this long (a peer that vanished, or
/// one that stopped reading and let its window close) is cut by the kernel (TCP_USER_TIMEOUT).
/// WebSockets notice a stalled reader sooner with lag probes; this bounds SSE streams and
/// every other response that cannot be written.
pub const UNACKED_LIMIT: Duration = Duration::from_secs(30);

/// Sets [`UNACKED_LIMIT`] on an accepted connection (where the platform has it).
fn limit_unacked(stream: &TcpStream) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::fd::AsRawFd;
        let ms = UNACKED_LIMIT.as_millis() as libc::c_uint;
        // SAFETY: a valid socket descriptor, an option value of the size given.
        let r = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_USER_TIMEOUT,
                (&ms as *const libc::c_uint).cast(),
                std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
            )
        };
        if r != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "TCP_USER_TIMEOUT not set");
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = stream;
}

pub struct Options {
    pub header_timeout: Duration,
    pub drain: Duration,
}

/// Serves `app` until `shutdown` completes; then cancels `token` (which ends live connections),
/// lets open connections finish for up to `drain`, and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    options: Options,
    token: CancellationToken,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = limits.connection() else {
            tokio::spawn(refuse_full(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        limit_unacked(&stream);
        let app = app.clone();
        let token = token.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let conn_slot = slot.clone();
            let service = app.map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(remote));
                req.extensions_mut().insert(conn_slot.clone());
                req
            });
            let conn = http
                .serve_connection(
                    TokioIo::new(JsonRefusals::new(stream)),
                    TowerToHyperService::new(service),
                )
                .with_upgrades();
            tokio::pin!(conn);
            // Polled only when the token wakes it: an SSE stream or a parked poll lives in
            // this task, and each of its events would otherwise poll the token (a shared lock).
            let shutdown = crate::live::gate::Gate::new(token.cancelled_owned());
            let evicted = crate::live::gate::Gate::new(slot.evicted());
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown => {
                    // Finish the request in flight (if any), then close.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
                // Too many connections without a session: the oldest (this one) makes room.
                _ = evicted => {
                    tracing::debug!(%remote, "anonymous connection closed to make room");
                }
            }
            drop::<ConnSlot>(slot);
        });
    }
    drop(listener);
    tracing::info!("shutting down: listener closed, draining connections");
    token.cancel();
    let deadline = Instant::now() + options.drain;
    while limits.open() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if limits.open() > 0 {
        tracing::warn!(open = limits.open(), "drain time over; dropping the rest");
    }
}

/// Tells a client the server is full, without reading its request, and closes.
async fn refuse_full(mut stream: TcpStream) {
    const BODY: &str = r#"{"error":{"code":"server_full","message":"The server is at its connection limit; retry shortly."}}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 5\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
