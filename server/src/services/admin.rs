//! Administration: the user list and admin rights.

use super::parse_id;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use protocol::{Transport, User, UserId};
use serde_json::Value;
use std::collections::HashMap;

pub async fn users(state: &AppState) -> ApiResult<Vec<User>> {
    Ok(state.store.list_users().await?)
}

/// Grants or removes admin rights. An admin cannot remove their own, so there is always one.
pub async fn set_admin(
    state: &AppState,
    admin: &User,
    user_id: &UserId,
    is_admin: bool,
) -> ApiResult<User> {
    let user_id: UserId = parse_id(user_id, "user")?;
    if user_id == admin.id && !is_admin {
        return Err(ApiError::bad(
            "invalid_request",
            "You cannot remove your own admin rights.",
        ));
    }
    if !state.store.set_admin(&user_id, is_admin).await? {
        return Err(ApiError::NotFound("user"));
    }
    // After the change: a request that read the old record meanwhile cached it before this.
    state.users.forget(&user_id);
    if let Some(cluster) = state.cluster.get() {
        cluster.relay.user_changed(&user_id);
    }
    let detail = serde_json::json!({ "user_id": user_id, "is_admin": is_admin });
    state
        .store
        .audit(admin, "set_admin", &detail, crate::clock::now_ms())
        .await?;
    state
        .store
        .user_by_id(&user_id)
        .await?
        .ok_or(ApiError::NotFound("user"))
}

/// The audit log, newest first. Each entry carries a `summary`: the change as a sentence that
/// names people by username ("alice set bob's chat transport to long polling"), so no screen has
/// to show ids or the raw detail.
pub async fn audit_log(state: &AppState, limit: Option<u32>) -> ApiResult<Vec<Value>> {
    let mut entries = state.store.audit_log(super::page_limit(limit)?).await?;
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    for entry in &mut entries {
        let subject = match entry["detail"]["user_id"].as_str() {
            Some(id) => {
                if !names.contains_key(id) {
                    let name = state.store.user_by_id(id).await?.map(|u| u.username);
                    names.insert(id.to_string(), name);
                }
                names.get(id).cloned().flatten()
            }
            None => None,
        };
        let summary = summarize(entry, subject.as_deref());
        if let Some(map) = entry.as_object_mut() {
            if let Some(name) = subject {
                map.insert("subject".into(), serde_json::json!({ "username": name }));
            }
            map.insert("summary".into(), Value::String(summary));
        }
    }
    Ok(entries)
}

/// One audit entry as a sentence. `subject` is the username of the user the change was about.
pub fn summarize(entry: &Value, subject: Option<&str>) -> String {
    let actor = entry["actor"]["username"].as_str().unwrap_or("An admin");
    let detail = &entry["detail"];
    let whose = match subject {
        Some(name) => format!("{name}'s"),
        None => "a removed user's".to_string(),
    };
    let who = subject.unwrap_or("a removed user");
    match entry["action"].as_str().unwrap_or_default() {
        "set_admin" => {
            if detail["is_admin"].as_bool().unwrap_or(false) {
                format!("{actor} made {who} an admin")
            } else {
                format!("{actor} removed {whose} admin rights")
            }
        }
        "transport_override" => {
            let parts: Vec<String> = detail["overrides"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(feed, t)| match t.as_str().and_then(|t| t.parse().ok()) {
                            Some(t) => {
                                format!("set {whose} {feed} transport to {}", Transport::label(t))
                            }
                            None => format!("let {who} choose their {feed} transport again"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            if parts.is_empty() {
                format!("{actor} changed {whose} transports")
            } else {
                format!("{actor} {}", and_list(&parts))
            }
        }
        "transport_switches" => {
            // Newer entries say what changed; older ones only the switches after the change.
            let (changes, all) = match detail["changed"].as_object() {
                Some(c) => (c.clone(), false),
                None => (
                    detail["switches"].as_object().cloned().unwrap_or_default(),
                    true,
                ),
            };
            let parts: Vec<String> = Transport::ALL
                .iter()
                .filter_map(|t| {
                    let on = changes.get(t.as_str())?.as_bool()?;
                    Some(format!("{} {}", t.label(), if on { "on" } else { "off" }))
                })
                .collect();
            if parts.is_empty() {
                format!("{actor} changed the transport switches")
            } else if all {
                format!(
                    "{actor} set the transports for everyone: {}",
                    parts.join(", ")
                )
            } else {
                format!("{actor} turned {} for everyone", and_list(&parts))
            }
        }
        "poll_settings" => {
            let mut parts = Vec::new();
            if let Some(ms) = detail["short_poll_ms"].as_u64() {
                parts.push(format!("the short-poll interval to {ms} ms"));
            }
            if let Some(s) = detail["long_poll_s"].as_u64() {
                parts.push(format!("the long-poll wait to {s} s"));
            }
            if parts.is_empty() {
                format!("{actor} changed the poll timing")
            } else {
                format!("{actor} set {}", and_list(&parts))
            }
        }
        "announcement" => {
            let title = detail["title"].as_str().unwrap_or_default();
            let n = detail["recipients"].as_u64().unwrap_or(0);
            let people = if n == 1 { "person" } else { "people" };
            format!("{actor} sent the announcement “{title}” to {n} {people}")
        }
        other => format!("{actor}: {}", other.replace('_', " ")),
    }
}

/// "a", "a and b", "a, b and c".
fn and_list(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(action: &str, detail: Value) -> Value {
        json!({"actor": {"id": "x", "username": "alice"}, "action": action, "detail": detail})
    }

    #[test]
    fn audit_entries_read_as_sentences() {
        let e = entry(
            "transport_switches",
            json!({"switches": {}, "changed": {"sse": false}}),
        );
        assert_eq!(summarize(&e, None), "alice turned SSE off for everyone");
        let e = entry(
            "transport_override",
            json!({"user_id": "u", "overrides": {"chat": "long_poll", "jobs": null}}),
        );
        assert_eq!(
            summarize(&e, Some("bob")),
            "alice set bob's chat transport to long polling and let bob choose their jobs transport again"
        );
        let e = entry("set_admin", json!({"user_id": "u", "is_admin": true}));
        assert_eq!(summarize(&e, Some("bob")), "alice made bob an admin");
        let e = entry("announcement", json!({"title": "Hi", "recipients": 1}));
        assert_eq!(
            summarize(&e, None),
            "alice sent the announcement “Hi” to 1 person"
        );
        let e = entry("poll_settings", json!({"short_poll_ms": 500}));
        assert_eq!(
            summarize(&e, None),
            "alice set the short-poll interval to 500 ms"
        );
    }
}
