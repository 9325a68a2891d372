//! Administration: the user list and admin rights.

use super::parse_id;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use protocol::User;

pub async fn users(state: &AppState) -> ApiResult<Vec<User>> {
    Ok(state.store.list_users().await?)
}

/// Grants or removes admin rights. An admin cannot remove their own, so there is always one.
pub async fn set_admin(
    state: &AppState,
    admin: &User,
    user_id: &str,
    is_admin: bool,
) -> ApiResult<User> {
    let user_id = parse_id(user_id, "user")?;
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
    if let Some(relay) = state.hub.relay() {
        relay.user_changed(&user_id);
    }
    let detail = serde_json::json!({ "user_id": user_id, "is_admin": is_admin });
    state
        .store
        .audit(admin, "set_admin", &detail, super::now_ms())
        .await?;
    state
        .store
        .user_by_id(&user_id)
        .await?
        .ok_or(ApiError::NotFound("user"))
}

/// The audit log, newest first.
pub async fn audit_log(state: &AppState, limit: Option<u32>) -> ApiResult<Vec<serde_json::Value>> {
    Ok(state.store.audit_log(super::page_limit(limit)?).await?)
}
