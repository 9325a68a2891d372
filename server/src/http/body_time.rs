//! Bounded body reads. hyper's header-read timeout covers a request's head only: a client that
//! sends a complete head and then stalls or trickles its body would hold the connection (and a
//! file descriptor) for as long as it likes. Every request body is read against a total
//! deadline (`--body-timeout-secs`) and, after a second of grace, a minimum rate
//! (`--body-min-rate`); a body that misses either ends with an error, and the request is
//! answered 408 `body_timeout` with `Connection: close`, whatever the handler made of it.
//!
//! Written here rather than taken from tower-http: its `TimeoutBody` bounds the wait for each
//! frame, which a trickle of one byte per interval never trips.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Time a body may take before the minimum rate applies (its first bytes may be slow to come).
pub const GRACE: Duration = Duration::from_secs(1);

/// The two bounds on reading one body.
#[derive(Debug, Clone, Copy)]
pub struct BodyTime {
    pub total: Duration,
    /// Bytes per second; 0: the total deadline only.
    pub min_rate: u64,
}

impl BodyTime {
    /// How long a body may have taken when `received` bytes have arrived.
    fn allowed(&self, received: u64) -> Duration {
        if self.min_rate == 0 {
            return self.total;
        }
        let by_rate = GRACE + Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        by_rate.min(self.total)
    }
}

/// The error a late body ends with.
#[derive(Debug)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// A body read against [`BodyTime`]; sets `late` when it gives up.
struct TimedBody {
    inner: Body,
    limits: BodyTime,
    started: Instant,
    received: u64,
    /// Made when the body first has to wait, reset as bytes arrive.
    sleep: Option<Pin<Box<Sleep>>>,
    late: Arc<AtomicBool>,
}

impl TimedBody {
    fn deadline(&self) -> Instant {
        self.started + self.limits.allowed(self.received)
    }

    fn give_up(&self) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        self.late.store(true, Ordering::Release);
        Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))))
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                if Instant::now() > this.deadline() {
                    return this.give_up();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                let deadline = this.deadline();
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => this.give_up(),
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Reads every request body against the state's [`BodyTime`]; a late one is answered 408.
pub async fn limit_body_time(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Most requests (GETs, polls) have no body: nothing to time.
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let limits = BodyTime {
        total: Duration::from_secs(state.config.body_timeout_secs.max(1)),
        min_rate: state.config.body_min_bytes_per_sec,
    };
    let late = Arc::new(AtomicBool::new(false));
    let req = req.map(|inner| {
        Body::new(TimedBody {
            inner,
            limits,
            started: Instant::now(),
            received: 0,
            sleep: None,
            late: Arc::clone(&late),
        })
    });
    let res = next.run(req).await;
    if !late.load(Ordering::Acquire) {
        return res;
    }
    tracing::info!("request body too slow: answered 408");
    let mut res = (
        StatusCode::REQUEST_TIMEOUT,
        axum::Json(
            ApiError::bad(
                "body_timeout",
                "The request body did not arrive in time; send it again.",
            )
            .body(),
        ),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_grows_the_allowance_up_to_the_deadline() {
        let t = BodyTime {
            total: Duration::from_secs(30),
            min_rate: 1000,
        };
        assert_eq!(t.allowed(0), GRACE);
        assert_eq!(t.allowed(2000), GRACE + Duration::from_secs(2));
        assert_eq!(t.allowed(10_000_000), Duration::from_secs(30));
        let deadline_only = BodyTime {
            total: Duration::from_secs(5),
            min_rate: 0,
        };
        assert_eq!(deadline_only.allowed(0), Duration::from_secs(5));
    }
}
