//! The one cheap-to-clone application state handed to every handler.

use crate::config::Config;
use crate::hub::Hub;
use crate::ratelimit::RateLimiter;
use crate::store::Store;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use protocol::{Switches, Transport};
use std::ops::Deref;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub login_limiter: RateLimiter,
    pub leptos: LeptosOptions,
    /// Cancelled when the server begins to shut down; long-lived connections watch it.
    pub shutdown: CancellationToken,
    /// Which transports are switched on; live connections watch it and close when theirs goes.
    pub switches: watch::Sender<Switches>,
    pub jobs: crate::services::jobs::JobRunner,
    pub presence: crate::presence::Presence,
    pub meters: crate::metrics::Meters,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn transport_enabled(&self, t: Transport) -> bool {
        self.switches.borrow().enabled(t)
    }

    /// 503 `transport_disabled` unless `t` is switched on.
    pub fn require_transport(&self, t: Transport) -> crate::error::ApiResult<()> {
        if self.transport_enabled(t) {
            Ok(())
        } else {
            Err(crate::error::ApiError::Unavailable(
                "transport_disabled",
                format!("{} is switched off; use another transport.", t.label()),
            ))
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}
