//! Security headers: pages carry a Content-Security-Policy whose per-response nonce is on every
//! inline script of the page (the hydration bootstrap), and every response says nosniff, no
//! framing, and a same-origin referrer.

use crate::common::TestApp;
use reqwest::StatusCode;

fn nonce_of(csp: &str) -> String {
    let start = csp.find("'nonce-").expect("a nonce source") + "'nonce-".len();
    let len = csp[start..].find('\'').expect("closing quote");
    csp[start..start + len].to_string()
}

fn common_headers(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert_eq!(h["referrer-policy"], "same-origin", "{what}");
    let csp = h["content-security-policy"].to_str().expect("ascii");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
}

#[tokio::test]
async fn pages_carry_a_csp_whose_nonce_is_on_every_inline_script() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let mut nonces = Vec::new();
    for (client, path) in [(&app.client(), "/login"), (&alice, "/"), (&alice, "/admin")] {
        let r = client.get_response(path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        common_headers(&r, path);
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .to_string();
        for directive in [
            "default-src 'self'",
            "'wasm-unsafe-eval'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        let nonce = nonce_of(&csp);
        assert!(nonce.len() >= 22, "at least 128 bits: {nonce}");
        let html = r.text().await.expect("html");
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert!(
            !scripts.is_empty(),
            "{path}: the page has its hydration script"
        );
        for s in &scripts {
            let tag = &s[..s.find('>').expect("tag end")];
            assert!(
                tag.contains(&format!("nonce=\"{nonce}\"")),
                "{path}: script without this response's nonce: <script{tag}>"
            );
        }
        nonces.push(nonce);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 3, "a fresh nonce per response");
}

#[tokio::test]
async fn api_and_static_responses_load_nothing() {
    let app = TestApp::spawn().await;
    let c = app.client();
    for path in ["/api/me", "/api/time", "/healthz", "/api/nope"] {
        let r = c.get_response(path).await;
        common_headers(&r, path);
        assert_eq!(
            r.headers()["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
    }
}

/// The live routes are served ahead of the other layers (see `http::live_router`): their
/// answers, refusals included, carry the same headers, and they read the session cookie
/// themselves: a signed-in poll is answered, a signed-out or forged cookie gets 401, and a
/// cross-site one 403.
#[tokio::test]
async fn live_routes_carry_the_headers_and_read_the_session_themselves() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let anon = app.client();
    let forged = app.client_with({
        let mut h = crate::common::same_origin(&app.origin());
        h.insert(
            "cookie",
            "other=1; switchboard_session=AAAAAAAAAAAAAAAAAAAAAA"
                .parse()
                .expect("cookie"),
        );
        h
    });
    let cross = app.client_with(crate::common::same_origin("http://evil.example"));
    let poll = "/api/live/poll?feeds=chat&wait=0";
    for (client, path, status) in [
        (&alice, poll, StatusCode::OK),
        (&alice, "/api/live/poll?wait=x", StatusCode::BAD_REQUEST),
        (&anon, poll, StatusCode::UNAUTHORIZED),
        (&forged, poll, StatusCode::UNAUTHORIZED),
        (&cross, poll, StatusCode::FORBIDDEN),
        (&anon, "/api/live/sse", StatusCode::UNAUTHORIZED),
    ] {
        let r = client.get_response(path).await;
        assert_eq!(r.status(), status, "{path}");
        common_headers(&r, path);
        assert_eq!(
            r.headers()["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
        let body: serde_json::Value = r.json().await.expect("json");
        if status == StatusCode::OK {
            assert!(body["cursor"].is_i64(), "{body}");
        } else {
            assert!(body["error"]["code"].is_string(), "{path}: {body}");
        }
    }

    // Signed out, a copy of the same cookie is refused by the live routes at once.
    let cookie = alice.session_cookie().expect("cookie");
    let copy = app.client();
    reqwest::cookie::CookieStore::set_cookies(
        &*copy.jar,
        &mut [reqwest::header::HeaderValue::from_str(&cookie).expect("cookie")].iter(),
        &copy.base.parse().expect("url"),
    );
    assert_eq!(copy.get(poll).await.0, StatusCode::OK, "the copy works");
    let (status, _) = alice.post_empty("/api/auth/logout").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(copy.get(poll).await.0, StatusCode::UNAUTHORIZED);
}
