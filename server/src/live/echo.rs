//! A WebSocket echo endpoint for conformance testing only (`GET /api/live/echo`, mounted only
//! with `--ws-echo`): the Autobahn test suite checks a server by having it echo what it sends.
//! It sits behind the same session and `Origin` checks as `/api/live/ws`, upgrades with the same
//! settings (read buffer, frame and message limits, [`ws::configure`]) and ends connections the
//! same way ([`ws::read_error`], [`ws::finish`]); only what is done with a message differs.

use super::ws::{self, End, MAX_CLIENT_FRAME, WRITE_TIMEOUT};
use crate::error::{ApiError, ApiResult};
use crate::extract::CurrentUser;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use protocol::close;
use tokio::time::timeout;

pub async fn upgrade(
    CurrentUser(_): CurrentUser,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let ws = ws.map_err(|e| ApiError::bad("websocket_required", e.body_text()))?;
    Ok(ws::configure(ws).on_upgrade(run))
}

async fn run(mut socket: WebSocket) {
    let end = loop {
        let msg = match socket.recv().await {
            None => break End::Drop,
            Some(Err(e)) => break ws::read_error(e),
            Some(Ok(msg)) => msg,
        };
        match msg {
            Message::Text(ref t) if t.len() > MAX_CLIENT_FRAME => {
                break End::Close(close::TOO_BIG, "frame too large");
            }
            Message::Binary(ref b) if b.len() > MAX_CLIENT_FRAME => {
                break End::Close(close::TOO_BIG, "frame too large");
            }
            Message::Text(_) | Message::Binary(_) => {
                if timeout(WRITE_TIMEOUT, socket.send(msg))
                    .await
                    .map_or(true, |r| r.is_err())
                {
                    break End::Drop;
                }
            }
            Message::Close(_) => break End::PeerClosed,
            // Pongs to pings are queued by the library and go out with the next read.
            Message::Ping(_) | Message::Pong(_) => {}
        }
    };
    ws::finish(socket, end).await;
}
