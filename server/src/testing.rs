//! What the unit tests of the live core share: the application state composed as the server
//! composes it (`state::compose`), on a SQLite file in a temporary directory, with users and
//! signed-in sessions made through the real store and session layer. Nothing is stood in for.

use crate::clock::{new_id, now_ms};
use crate::config::Config;
use crate::sessions::{SessionWatch, COOKIE};
use crate::state::{compose, AppState, Composed};
use axum::http::{header, Request};
use protocol::User;
use tokio_util::sync::CancellationToken;

/// A composed server (not serving) on its own database.
pub struct World {
    pub state: AppState,
    _dir: tempfile::TempDir,
}

impl World {
    /// A server with the tests' configuration, changed by `tweak`.
    pub async fn new(tweak: impl FnOnce(&mut Config)) -> World {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = Config::for_tests(&dir.path().join("switchboard.db"));
        config.data_dir = Some(dir.path().to_path_buf());
        tweak(&mut config);
        let addr = "127.0.0.1:0".parse().expect("an address");
        let Composed { state, .. } = compose(config, addr, CancellationToken::new())
            .await
            .expect("the state");
        World { state, _dir: dir }
    }

    /// A new user (with a password nobody can sign in with: these tests need none).
    pub async fn user(&self, name: &str) -> User {
        self.state
            .store
            .create_user(&new_id(), name, "no password", now_ms())
            .await
            .expect("a user")
    }

    /// `user` signed in, and the session of a request carrying that sign-in's cookie, watched
    /// as a live connection watches it.
    pub async fn signed_in(&self, user: &User) -> SessionWatch {
        let sessions = &self.state.sessions;
        let (mut parts, ()) = Request::new(()).into_parts();
        let session = sessions.request_session(&mut parts);
        sessions.begin(&session, &user.id).await.expect("signed in");
        session.save().await.expect("the session saved");
        let id = session.id().expect("a session id");
        let (mut parts, ()) = Request::builder()
            .header(header::COOKIE, format!("{COOKIE}={id}"))
            .body(())
            .expect("a request")
            .into_parts();
        sessions.watch_request(&mut parts).await.expect("watched")
    }
}
