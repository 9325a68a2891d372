use crate::common::{TestApp, PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn signup_login_logout_me() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    let (status, body) = alice.get("/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");

    let user = alice.signup("Alice").await;
    assert_eq!(user.username, "alice", "usernames are case-folded");
    assert!(user.is_admin, "the first account is an admin");
    let (status, me) = alice.get("/api/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], user.id.as_str());

    let bob = app.client().signup("bob").await;
    assert!(!bob.is_admin, "later accounts are not admins");

    let (status, _) = alice.post_empty("/api/auth/logout").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(alice.get("/api/me").await.0, StatusCode::UNAUTHORIZED);

    let again = alice.login("ALICE").await;
    assert_eq!(again.id, user.id);
    assert_eq!(alice.get("/api/me").await.0, StatusCode::OK);
}

#[tokio::test]
async fn login_rotates_the_session_id_and_sets_a_safe_cookie() {
    let app = TestApp::spawn().await;
    let c = app.client();
    c.signup("carol").await;
    let before = c.session_cookie().expect("cookie after signup");
    let r = c
        .http
        .post(c.url("/api/auth/login"))
        .json(&json!({"username": "carol", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP by default: {set_cookie}"
    );
    let after = c.session_cookie().expect("cookie after login");
    assert_ne!(before, after, "a new session id at login");
}

#[tokio::test]
async fn duplicate_and_invalid_usernames_and_passwords_are_refused() {
    let app = TestApp::spawn().await;
    app.client().signup("dave").await;
    let c = app.client();
    let (status, body) = c
        .post(
            "/api/auth/signup",
            json!({"username": "DAVE", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "username_taken");

    for bad in ["ab", "has space", "émile", "x/y", &"a".repeat(33)] {
        let (status, body) = c
            .post(
                "/api/auth/signup",
                json!({"username": bad, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_username");
    }
    let (status, body) = c
        .post(
            "/api/auth/signup",
            json!({"username": "erin", "password": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_password");

    for body in [
        json!({"username": "erin"}),
        json!({"username": 5, "password": PASSWORD}),
        json!([]),
    ] {
        let (status, err) = c.post("/api/auth/signup", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["error"]["code"], "invalid_json");
    }
    let (status, err) = c
        .post_raw("/api/auth/signup", "application/json", "{not json")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "invalid_json");
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.client().signup("frank").await;
    let c = app.client();
    let wrong = c
        .post(
            "/api/auth/login",
            json!({"username": "frank", "password": "not the password"}),
        )
        .await;
    let unknown = c
        .post(
            "/api/auth/login",
            json!({"username": "nobody", "password": "not the password"}),
        )
        .await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong, unknown);
}

#[tokio::test]
async fn login_is_rate_limited_per_username_and_per_ip() {
    let app = TestApp::spawn_configured(|c| {
        c.login_per_user_per_minute = 3;
        c.login_per_ip_per_minute = 6;
    })
    .await;
    app.client().signup("grace").await;
    let c = app.client();
    for _ in 0..3 {
        let (status, _) = c
            .post(
                "/api/auth/login",
                json!({"username": "grace", "password": "wrong password"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let r = c
        .http
        .post(c.url("/api/auth/login"))
        .json(&json!({"username": "grace", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // Other names from the same address count towards the per-IP limit (6 in all).
    for name in ["h1", "h2"] {
        let (status, _) = c
            .post(
                "/api/auth/login",
                json!({"username": name, "password": "wrong password"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = c
        .post(
            "/api/auth/login",
            json!({"username": "h3", "password": "wrong password"}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn admins_can_promote_and_others_cannot() {
    let app = TestApp::spawn().await;
    let admin = app.client();
    admin.signup("root").await;
    let other = app.client();
    let ivy = other.signup("ivy").await;
    let (status, _) = other.get("/api/admin/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = admin
        .put(
            &format!("/api/admin/users/{}", ivy.id),
            json!({"is_admin": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["is_admin"], true);
    let (_, me) = other.get("/api/me").await;
    assert_eq!(me["is_admin"], true, "promotion takes effect at once");
    let (status, _) = admin
        .put("/api/admin/users/not-an-id", json!({"is_admin": true}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cross_origin_writes_are_refused() {
    let app = TestApp::spawn().await;
    let c = app.client();
    let r = c
        .http
        .post(c.url("/api/auth/signup"))
        .header("origin", "http://evil.example")
        .json(&json!({"username": "mallory", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let same = format!("http://{}", app.addr);
    let r = c
        .http
        .post(c.url("/api/auth/signup"))
        .header("origin", same)
        .json(&json!({"username": "mallory", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn html_forms_sign_in_without_javascript() {
    let app = TestApp::spawn().await;
    app.client().signup("judy").await;
    let c = app.client();
    let r = c
        .http
        .post(c.url("/api/auth/login"))
        .form(&[("username", "judy"), ("password", "nope nope nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?error=bad_credentials");
    let r = c
        .http
        .post(c.url("/api/auth/login"))
        .form(&[("username", "judy"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/");
    assert_eq!(c.get("/api/me").await.0, StatusCode::OK);
}

#[tokio::test]
async fn admin_changes_are_audited_and_poll_timing_is_an_admin_setting() {
    let app = TestApp::spawn().await;
    let admin = app.client();
    admin.signup("root").await;
    let user = app.client();
    let u = user.signup("ursula").await;
    admin
        .put(
            &format!("/api/admin/users/{}/transports", u.id),
            json!({"chat": "sse"}),
        )
        .await;
    admin
        .put("/api/admin/transports", json!({"long_poll": false}))
        .await;
    admin
        .put(
            &format!("/api/admin/users/{}", u.id),
            json!({"is_admin": false}),
        )
        .await;
    let (status, body) = admin
        .put(
            "/api/admin/settings",
            json!({"short_poll_ms": 1500, "long_poll_s": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["short_poll_ms"], 1500);
    let (_, mine) = user.get("/api/me/transports").await;
    assert_eq!(mine["short_poll_ms"], 1500);
    assert_eq!(mine["long_poll_s"], 10);
    for bad in [
        json!({"short_poll_ms": 10}),
        json!({"long_poll_s": 31}),
        json!({"speed": 1}),
        json!({"long_poll_s": "x"}),
    ] {
        assert_eq!(
            admin.put("/api/admin/settings", bad.clone()).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    let (status, log) = admin.get("/api/admin/audit").await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "poll_settings",
            "set_admin",
            "transport_switches",
            "transport_override"
        ],
        "newest first"
    );
    let override_entry = &log["entries"][3];
    assert_eq!(override_entry["actor"]["username"], "root");
    assert_eq!(override_entry["detail"]["user_id"], u.id.as_str());
    assert_eq!(override_entry["detail"]["overrides"]["chat"], "sse");
    assert!(override_entry["at"].as_i64().unwrap() > 0);
    // Each entry reads as a sentence naming people by username: no ids, no JSON.
    let summaries: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert_eq!(
        summaries,
        [
            "root set the short-poll interval to 1500 ms and the long-poll wait to 10 s",
            "root removed ursula's admin rights",
            "root turned long polling off for everyone",
            "root set ursula's chat transport to SSE",
        ]
    );
    assert_eq!(override_entry["subject"]["username"], "ursula");

    for path in [
        "/api/admin/audit",
        "/api/admin/settings",
        "/api/admin/metrics",
        "/api/admin/users",
        "/api/admin/transports",
    ] {
        assert_eq!(user.get(path).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        user.put("/api/admin/settings", json!({"long_poll_s": 5}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn empty_sign_in_and_sign_up_fields_are_named() {
    let app = TestApp::spawn().await;
    app.client().signup("kim").await;
    let c = app.client();
    for path in ["/api/auth/login", "/api/auth/signup"] {
        for (body, code, message) in [
            (
                json!({"username": "  ", "password": PASSWORD}),
                "username_required",
                "Enter your username.",
            ),
            (
                json!({"username": "", "password": ""}),
                "username_required",
                "Enter your username.",
            ),
            (
                json!({"username": "kim", "password": ""}),
                "password_required",
                "Enter your password.",
            ),
        ] {
            let (status, err) = c.post(path, body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {err}");
            assert_eq!(err["error"]["code"], code, "{path} {body}");
            assert_eq!(err["error"]["message"], message, "{path} {body}");
        }
    }
    // The form without JavaScript is sent back to its page with the same code.
    let r = c
        .http
        .post(c.url("/api/auth/login"))
        .form(&[("username", "kim"), ("password", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?error=password_required");
}
