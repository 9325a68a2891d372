//! Transport settings: each user's choice per feed, admin overrides, and the global switches.
//! Every change is pushed to the user's open clients as a `transport` control event, so they
//! switch without a reload; switching a transport off also closes its open connections.

use super::parse_id;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use protocol::{
    EventData, Feed, PollTimings, Switches, Transport, TransportChange, TransportSettings, User,
    UserId, CHOOSABLE_FEEDS,
};
use serde_json::{Map, Value};

/// Settings keys an admin can change at run time.
pub const SHORT_POLL_MS_KEY: &str = "short_poll_ms";
pub const LONG_POLL_S_KEY: &str = "long_poll_s";

pub async fn settings_for(state: &AppState, user_id: &str) -> ApiResult<TransportSettings> {
    let (chosen, overrides) = state.store.transport_prefs(user_id).await?;
    let (short_poll_ms, long_poll_s) = poll_timing(state).await?;
    Ok(TransportSettings::new(
        chosen,
        overrides,
        *state.switches.borrow(),
        short_poll_ms,
        long_poll_s,
    ))
}

/// The short-poll interval (ms) and long-poll hold (s) in force.
pub async fn poll_timing(state: &AppState) -> ApiResult<(u32, u32)> {
    let read = |v: Option<String>, default: u32| v.and_then(|s| s.parse().ok()).unwrap_or(default);
    Ok((
        read(
            state.store.setting(SHORT_POLL_MS_KEY).await?,
            state.config.short_poll_ms,
        ),
        read(
            state.store.setting(LONG_POLL_S_KEY).await?,
            state.config.long_poll_secs,
        )
        .clamp(1, 30),
    ))
}

/// Parses `{"chat": "sse", …}`: only the choosable feeds, each a transport (or null when
/// `allow_null`, meaning "clear").
fn parse_changes(
    body: &Map<String, Value>,
    allow_null: bool,
) -> ApiResult<Vec<(Feed, Option<Transport>)>> {
    if body.is_empty() {
        return Err(ApiError::bad(
            "invalid_transports",
            "Name at least one feed.",
        ));
    }
    let mut changes = Vec::new();
    for (key, value) in body {
        let feed: Feed = key
            .parse()
            .ok()
            .filter(|f| CHOOSABLE_FEEDS.contains(f))
            .ok_or_else(|| {
                ApiError::bad(
                    "invalid_feed",
                    format!("`{key}` is not a feed with a transport"),
                )
            })?;
        let t = match value {
            Value::Null if allow_null => None,
            Value::String(s) => Some(
                s.parse::<Transport>()
                    .map_err(|e| ApiError::bad("invalid_transport", e.to_string()))?,
            ),
            _ => {
                return Err(ApiError::bad(
                    "invalid_transport",
                    format!("`{key}` takes one of websocket, sse, long_poll, short_poll"),
                ))
            }
        };
        changes.push((feed, t));
    }
    Ok(changes)
}

/// Tells the user's open clients their settings changed.
async fn announce(state: &AppState, user_id: &str) -> ApiResult<TransportSettings> {
    let settings = settings_for(state, user_id).await?;
    let data = EventData::Transport(TransportChange::Settings(settings.clone()));
    let (store, user_id) = (state.store.clone(), user_id.to_string());
    state
        .hub
        .commit::<(), ApiError, _>(async move {
            let ev = store
                .append(
                    Feed::Control,
                    data.kind(),
                    None,
                    Some(&user_id),
                    data.data_json(),
                    now_ms(),
                )
                .await?;
            Ok(((), vec![ev]))
        })
        .await?;
    Ok(settings)
}

pub async fn update_mine(
    state: &AppState,
    me: &User,
    body: &Map<String, Value>,
) -> ApiResult<TransportSettings> {
    for (feed, t) in parse_changes(body, false)? {
        state.store.set_transport_choice(&me.id, feed, t).await?;
    }
    announce(state, &me.id).await
}

pub async fn set_overrides(
    state: &AppState,
    admin: &User,
    user_id: &UserId,
    body: &Map<String, Value>,
) -> ApiResult<TransportSettings> {
    let user_id: UserId = parse_id(user_id, "user")?;
    state
        .store
        .user_by_id(&user_id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    for (feed, t) in parse_changes(body, true)? {
        state
            .store
            .set_transport_override(&user_id, feed, t)
            .await?;
    }
    let detail = serde_json::json!({ "user_id": user_id, "overrides": body });
    state
        .store
        .audit(admin, "transport_override", &detail, now_ms())
        .await?;
    announce(state, &user_id).await
}

/// Applies a subset of `{"websocket": bool, …}`. At least one transport stays on.
pub async fn set_switches(
    state: &AppState,
    admin: &User,
    body: &Map<String, Value>,
) -> ApiResult<Switches> {
    let before = *state.switches.borrow();
    let mut switches = before;
    for (key, value) in body {
        let t: Transport = key
            .parse()
            .map_err(|e: protocol::ParseError| ApiError::bad("invalid_transport", e.to_string()))?;
        let on = value.as_bool().ok_or_else(|| {
            ApiError::bad("invalid_transport", format!("`{key}` takes true or false"))
        })?;
        switches.set(t, on);
    }
    if !switches.any() {
        return Err(ApiError::bad(
            "invalid_transports",
            "At least one transport must stay on.",
        ));
    }
    state.store.set_switches(switches).await?;
    // What this change turned on or off, for the audit log's sentence.
    let changed: Map<String, Value> = Transport::ALL
        .iter()
        .filter(|t| before.enabled(**t) != switches.enabled(**t))
        .map(|t| (t.as_str().to_string(), Value::Bool(switches.enabled(*t))))
        .collect();
    state
        .store
        .audit(
            admin,
            "transport_switches",
            &serde_json::json!({ "switches": switches, "changed": changed }),
            now_ms(),
        )
        .await?;
    // Open connections of a transport switched off close themselves on this.
    state.switches.send_replace(switches);
    tell_everyone(state, TransportChange::Switches { switches }).await?;
    tracing::info!(?switches, "transport switches changed");
    Ok(switches)
}

/// Shortest short-poll interval an admin may set (ms): faster only burns requests.
pub const MIN_SHORT_POLL_MS: u64 = 250;
pub const MAX_SHORT_POLL_MS: u64 = 60_000;

/// The poll timing in force, as `{"short_poll_ms","long_poll_s"}`.
pub async fn poll_settings(state: &AppState) -> ApiResult<Value> {
    let (short_poll_ms, long_poll_s) = poll_timing(state).await?;
    Ok(serde_json::json!({ "short_poll_ms": short_poll_ms, "long_poll_s": long_poll_s }))
}

/// Changes the short-poll interval and/or long-poll hold; every client picks it up.
pub async fn set_poll_settings(
    state: &AppState,
    admin: &User,
    body: &Map<String, Value>,
) -> ApiResult<Value> {
    if body.is_empty() {
        return Err(ApiError::bad(
            "invalid_setting",
            "Name at least one setting.",
        ));
    }
    // Every value is checked before any is written: a 400 changes nothing.
    let mut changes = Vec::with_capacity(body.len());
    for (key, value) in body {
        let (lo, hi, store_key) = match key.as_str() {
            "short_poll_ms" => (MIN_SHORT_POLL_MS, MAX_SHORT_POLL_MS, SHORT_POLL_MS_KEY),
            "long_poll_s" => (1, 30, LONG_POLL_S_KEY),
            other => {
                return Err(ApiError::bad(
                    "invalid_setting",
                    format!("`{other}` is not a setting"),
                ))
            }
        };
        let v = value
            .as_u64()
            .filter(|v| (lo..=hi).contains(v))
            .ok_or_else(|| {
                ApiError::bad(
                    "invalid_setting",
                    format!("`{key}` takes a number from {lo} to {hi}"),
                )
            })?;
        changes.push((store_key, v));
    }
    for (store_key, v) in changes {
        state.store.set_setting(store_key, &v.to_string()).await?;
    }
    state
        .store
        .audit(
            admin,
            "poll_settings",
            &Value::Object(body.clone()),
            now_ms(),
        )
        .await?;
    let (short_poll_ms, long_poll_s) = poll_timing(state).await?;
    let poll = PollTimings {
        long_poll_s,
        short_poll_ms,
    };
    // Clients refetch their settings on a global `transport` event.
    tell_everyone(state, TransportChange::Poll { poll }).await?;
    poll_settings(state).await
}

/// A `transport` control event to every user: their clients fetch their settings again.
async fn tell_everyone(state: &AppState, change: TransportChange) -> ApiResult<()> {
    let data = EventData::Transport(change);
    let store = state.store.clone();
    state
        .hub
        .commit::<(), ApiError, _>(async move {
            let ev = store
                .append(
                    Feed::Control,
                    data.kind(),
                    None,
                    None,
                    data.data_json(),
                    now_ms(),
                )
                .await?;
            Ok(((), vec![ev]))
        })
        .await
}
