//! Accounts: sign-up, sign-in (rate limited, one answer for unknown user and wrong password),
//! and admin promotion. Argon2id hashing runs on the blocking pool.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use protocol::{check_display_name, check_password, normalize_username, Credentials, User};
use std::net::IpAddr;
use std::sync::OnceLock;

pub async fn signup(state: &AppState, creds: Credentials, ip: IpAddr) -> ApiResult<User> {
    state
        .limiter
        .check(
            &format!("signup:{ip}"),
            state.config.signup_per_ip_per_minute,
        )
        .map_err(ApiError::RateLimited)?;
    require_fields(&creds)?;
    let username =
        normalize_username(&creds.username).map_err(|m| ApiError::bad("invalid_username", m))?;
    check_password(&creds.password).map_err(|m| ApiError::bad("invalid_password", m))?;
    let hash = hash_password(creds.password).await?;
    let id = crate::clock::new_id();
    match state
        .store
        .create_user(&id, &username, &hash, crate::clock::now_ms())
        .await
    {
        Ok(user) => {
            tracing::info!(user = %user.username, admin = user.is_admin, "signed up");
            Ok(user)
        }
        Err(crate::store::StoreError::Conflict) => Err(ApiError::Conflict(
            "username_taken",
            "That username is taken.".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn login(state: &AppState, creds: Credentials, ip: IpAddr) -> ApiResult<User> {
    let cfg = &state.config;
    state
        .limiter
        .check(&format!("ip:{ip}"), cfg.login_per_ip_per_minute)
        .map_err(ApiError::RateLimited)?;
    // Nothing typed is said as such (it tells nothing about any account).
    require_fields(&creds)?;
    // A name that cannot exist still costs a hash below, so timing does not tell names apart.
    let username = normalize_username(&creds.username).unwrap_or_default();
    // Guessing one person's password from many addresses: past the limit of failures the name
    // is guarded. Addresses that failed lately wait out the minute; a clean one (the owner,
    // most likely) is still checked, after a pause, so nobody can lock the owner out.
    let (user_key, ip_key) = (format!("fail-user:{username}"), format!("fail-ip:{ip}"));
    let limit = cfg.login_per_user_per_minute;
    if limit > 0 && state.limiter.count(&user_key) >= limit {
        if state.limiter.count(&ip_key) > 0 {
            return Err(ApiError::RateLimited(state.limiter.retry_after(&ip_key)));
        }
        tokio::time::sleep(std::time::Duration::from_millis(cfg.login_slowdown_ms)).await;
    }
    let record = if username.is_empty() {
        None
    } else {
        state.store.user_by_name(&username).await?
    };
    let hash = match &record {
        Some(r) => r.password_hash.clone(),
        None => dummy_hash().await?,
    };
    let ok = verify_password(creds.password, hash).await?;
    match record {
        Some(r) if ok => Ok(r.user),
        _ => {
            state.limiter.record(&user_key);
            state.limiter.record(&ip_key);
            Err(ApiError::BadCredentials)
        }
    }
}

/// Sets my display name (1–64 characters, one line, trimmed): everyone signed in gets
/// `user_updated` from the same transaction, and this server's cache of me is refreshed at once
/// (other servers of a cluster refresh theirs within the cache's few seconds).
pub async fn set_display_name(state: &AppState, me: &User, raw: &str) -> ApiResult<User> {
    let name = check_display_name(raw).map_err(|m| ApiError::bad("invalid_display_name", m))?;
    let (store, id, name) = (state.store.clone(), me.id.clone(), name.to_string());
    let user = state
        .hub
        .commit(async move {
            match store
                .set_display_name(&id, &name, crate::clock::now_ms())
                .await?
            {
                Some((user, events)) => Ok((user, events)),
                None => Err(ApiError::Unauthorized),
            }
        })
        .await?;
    state.users.put(&user);
    Ok(user)
}

/// `me` as this server knows them now: a live connection holds who signed in when it opened,
/// and their display name may have changed since. From the few seconds' user cache, else the
/// store (the snapshot when the store cannot answer: a name a little old beats a refused send).
pub async fn refreshed(state: &AppState, me: &User) -> User {
    if let Some(user) = state.users.get(&me.id) {
        return user;
    }
    match state.store.user_by_id(&me.id).await {
        Ok(Some(user)) => {
            state.users.put(&user);
            user
        }
        _ => me.clone(),
    }
}

/// Changes my password: the current one must be right (401 `wrong_password` otherwise; tries
/// are limited like sign-ins, per user), the new one follows the sign-up rules. The caller then
/// signs out every other session of mine (see `Sessions::end_others`).
pub async fn change_password(
    state: &AppState,
    me: &User,
    current: String,
    new: String,
) -> ApiResult<()> {
    state
        .limiter
        .check(
            &format!("password:{}", me.id),
            state.config.login_per_user_per_minute,
        )
        .map_err(ApiError::RateLimited)?;
    if current.is_empty() {
        return Err(ApiError::bad(
            "password_required",
            "Enter your current password.",
        ));
    }
    check_password(&new).map_err(|m| ApiError::bad("invalid_password", m))?;
    let hash = state
        .store
        .password_hash(&me.id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if !verify_password(current, hash).await? {
        return Err(ApiError::WrongPassword);
    }
    let hash = hash_password(new).await?;
    if !state.store.set_password_hash(&me.id, &hash).await? {
        return Err(ApiError::Unauthorized);
    }
    tracing::info!(user = %me.username, "password changed");
    Ok(())
}

/// An empty username or password is named: the form says which field is missing.
fn require_fields(creds: &Credentials) -> ApiResult<()> {
    if creds.username.trim().is_empty() {
        return Err(ApiError::bad("username_required", "Enter your username."));
    }
    if creds.password.is_empty() {
        return Err(ApiError::bad("password_required", "Enter your password."));
    }
    Ok(())
}

/// Argon2 hashes at once: one per core. Each takes 19 MiB and a core for tens of ms; more at
/// once only queue on the CPU while holding their memory.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    })
}

async fn hash_password(password: String) -> ApiResult<String> {
    let _permit = hashing_permits()
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || password_auth::generate_hash(password))
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}

async fn verify_password(password: String, hash: String) -> ApiResult<bool> {
    let _permit = hashing_permits()
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || password_auth::verify_password(password, &hash).is_ok())
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}

/// A real hash of a random password, computed once, checked against when the user is unknown.
async fn dummy_hash() -> ApiResult<String> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h.clone());
    }
    let h = hash_password(crate::clock::new_id()).await?;
    Ok(DUMMY.get_or_init(|| h).clone())
}
