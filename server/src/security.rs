//! Response headers that limit what a page can do if something hostile ever gets into it: a
//! Content-Security-Policy (per-response nonce for the hydration scripts), no MIME sniffing, no
//! framing, and a referrer that never leaves the site. See docs/SECURITY.md.

use app::CspNonce;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The policy for pages. Scripts: our own files, plus inline scripts carrying this response's
/// nonce (Leptos' hydration bootstrap); `'wasm-unsafe-eval'` lets the page compile its wasm and
/// nothing else. Styles and images are our own files (the UI sets no inline styles). Connections
/// go to this origin only (`'self'` covers ws:/wss: to the same host in CSP 3). No plugins, no
/// `<base>`, forms post here only, and no page may frame ours.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Everything that is not a page (JSON, event streams, static files) loads nothing at all.
pub const OTHER_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// The policy of an uploaded file (whatever its type: an HTML or SVG file opened directly runs
/// nothing, in a sandbox with an origin of its own). A response that sets its own policy keeps it.
pub const UPLOAD_POLICY: &str = "default-src 'none'; sandbox; frame-ancestors 'none'";

/// Adds the security headers to every response, and gives each request a fresh CSP nonce for
/// the page renderer (see `app::shell`).
pub async fn headers(mut req: Request, next: Next) -> Response {
    // Live routes (polls, streams, sockets) never answer with a page: no nonce to make there,
    // which spares every poll a call to the OS's random generator.
    let nonce = (!req.uri().path().starts_with("/api/live/")).then(|| {
        // 122 random bits from the OS generator; hex is within the nonce grammar.
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        req.extensions_mut().insert(CspNonce(nonce.clone()));
        nonce
    });
    let mut res = next.run(req).await;
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let policy = if is_html {
        // A page without a nonce of its own gets one nothing in it carries: no inline script runs.
        let nonce = nonce.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        HeaderValue::from_str(&page_policy(&nonce)).ok()
    } else {
        Some(HeaderValue::from_static(OTHER_POLICY))
    };
    let h = res.headers_mut();
    let own = h.contains_key(header::CONTENT_SECURITY_POLICY);
    if let Some(v) = policy.filter(|_| !own) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    common_headers(h);
    res
}

/// The headers of a response that is not a page (the live routes set them with this).
pub fn other_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(OTHER_POLICY),
    );
    common_headers(h);
}

fn common_headers(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}
