//! The origin policy: which host names this server answers to (against DNS rebinding) and which
//! pages may write or open live connections with the user's cookie (against CSRF and
//! cross-site WebSocket hijacking). Layered over the whole router ([`refuse_cross_origin`]) and
//! run by the live routes' own guard (`live::router`).

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::Ipv4Addr;

/// Why a request was refused by the origin policy (the 403's message).
pub type Refusal = &'static str;

/// The host policy, against DNS rebinding (see docs/SECURITY.md): a rebinding attack reaches the
/// server under the attacker's own domain name, so a request is served only when its `Host` is
/// an IP address, `localhost`, a name in `allowed_hosts` (`name` for any port, `name:port` for
/// one), the host of one of `allowed_origins`, or anything when `allowed_hosts` holds `*`.
pub fn check_host(
    headers: &axum::http::HeaderMap,
    allowed_hosts: &[String],
    allowed_origins: &[String],
) -> bool {
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|h| !h.is_empty())
    else {
        return false;
    };
    // Compared without case and without a copy: this runs on every request, polls included.
    let name = split_port(host);
    if name.eq_ignore_ascii_case("localhost") || is_ip_literal(name) {
        return true;
    }
    let matches = |entry: &str| {
        let entry = entry.trim();
        entry == "*"
            || entry.eq_ignore_ascii_case(host)
            || (!entry.contains(':') && entry.eq_ignore_ascii_case(name))
    };
    allowed_hosts.iter().any(|h| matches(h))
        || allowed_origins.iter().any(|o| {
            let o = o.trim().trim_end_matches('/');
            o.split_once("://").is_some_and(|(_, h)| matches(h))
        })
}

/// The host part of `host[:port]` (an IPv6 literal keeps its brackets).
fn split_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

fn is_ip_literal(name: &str) -> bool {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => name.parse::<Ipv4Addr>().is_ok(),
    }
}

/// The origin policy (see docs/SECURITY.md). A request is from "this site" when its `Origin` is
/// the server's own (scheme-less compare with `Host`) or one of `allowed`; without `Origin`,
/// when `Sec-Fetch-Site` is `same-origin` or `none` (a typed URL or bookmark). Browsers send
/// `Origin` on every WebSocket handshake and every non-GET request, and `Sec-Fetch-Site` on
/// everything, so a request with neither is not from a browser page: it may write (API clients,
/// curl), but when `live` (a WebSocket or SSE stream, a poll) it must say where it comes from,
/// because those are the requests a hostile page could otherwise ride with the user's cookie.
pub fn check_origin(
    headers: &axum::http::HeaderMap,
    allowed: &[String],
    live: bool,
) -> Result<(), Refusal> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = header(header::ORIGIN.as_str()) {
        let origin = origin.trim();
        if origin.eq_ignore_ascii_case("null") {
            return Err("Requests from an opaque (null) origin are refused.");
        }
        if allowed
            .iter()
            .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            return Ok(());
        }
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        return match (origin_host, header(header::HOST.as_str())) {
            (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
            _ => Err("Cross-origin requests are refused."),
        };
    }
    match header("sec-fetch-site") {
        Some("same-origin" | "none") => Ok(()),
        Some(_) => Err("Cross-origin requests are refused."),
        None if live => Err("Live connections must carry an Origin header."),
        None => Ok(()),
    }
}

/// The 400 for a request to a host name this server does not answer to
/// ([`check_host`]), if it is one. `/healthz` answers any host: a load balancer's health
/// check may name the server by its service name, and the answer tells nothing.
pub fn misdirected(state: &AppState, req: &Request) -> Option<Response> {
    if req.uri().path() == "/healthz"
        || check_host(
            req.headers(),
            &state.config.allowed_hosts,
            &state.config.allowed_origins,
        )
    {
        return None;
    }
    tracing::info!(path = %req.uri().path(), host = ?req.headers().get("host"), "refused by the host policy");
    Some(
        ApiError::bad(
            "invalid_host",
            "This server does not answer to that host name.",
        )
        .into_response(),
    )
}

/// The 403 for a request the origin policy refuses ([`check_origin`]), if it does.
pub fn refused(state: &AppState, req: &Request, live: bool) -> Option<Response> {
    let why = check_origin(req.headers(), &state.config.allowed_origins, live).err()?;
    tracing::info!(path = %req.uri().path(), origin = ?req.headers().get("origin"), "refused by the origin policy");
    Some(ApiError::Forbidden(why.into()).into_response())
}

/// Live routes: a cross-site page must not be able to open these with the user's cookie (a
/// WebSocket has no CORS at all), so they need an origin signal even though they are GETs.
pub fn is_live(path: &str) -> bool {
    path.starts_with("/api/live/") || path == "/api/admin/metrics/live"
}

/// Refuses requests to host names this server does not answer to (DNS rebinding), and
/// state-changing requests and live connections from pages of other origins (CSRF and
/// cross-site WebSocket hijacking); safe reads pass. Layered over the whole router, so it covers
/// every route that takes a write: the API, the sign-in forms, and any Leptos server function.
pub async fn refuse_cross_origin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(refusal) = misdirected(&state, &req) {
        return refusal;
    }
    // Layered around the router (not under a nest): the URI is the whole path.
    let live = is_live(req.uri().path());
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if write || live {
        if let Some(refusal) = refused(&state, &req, live) {
            return refusal;
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod host_tests {
    use super::check_host;
    use axum::http::{header, HeaderMap, HeaderValue};

    fn with_host(h: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::HOST, HeaderValue::from_str(h).unwrap());
        m
    }

    #[test]
    fn only_addresses_localhost_and_named_hosts_pass() {
        let none: [String; 0] = [];
        for ok in [
            "127.0.0.1:3000",
            "10.0.0.7",
            "[::1]:3000",
            "[::1]",
            "localhost:3000",
            "LOCALHOST",
        ] {
            assert!(check_host(&with_host(ok), &none, &none), "{ok}");
        }
        for bad in [
            "evil.example:3000",
            "evil.example",
            "127.0.0.1.nip.io:3000",
            "localhost.evil.example",
            "[::1",
        ] {
            assert!(!check_host(&with_host(bad), &none, &none), "{bad}");
        }
        assert!(!check_host(&HeaderMap::new(), &none, &none), "no Host");
        let hosts = [
            "chat.example.com".to_string(),
            "other.example:8443".to_string(),
        ];
        assert!(check_host(&with_host("chat.example.com"), &hosts, &none));
        assert!(check_host(
            &with_host("Chat.Example.com:443"),
            &hosts,
            &none
        ));
        assert!(check_host(&with_host("other.example:8443"), &hosts, &none));
        assert!(!check_host(&with_host("other.example:9000"), &hosts, &none));
        let origins = ["https://app.example.org".to_string()];
        assert!(check_host(&with_host("app.example.org"), &none, &origins));
        assert!(check_host(
            &with_host("anything.example"),
            &["*".to_string()],
            &none
        ));
    }
}
