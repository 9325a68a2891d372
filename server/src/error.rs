//! The API's one error type: a stable wire code, a status, and a message safe to show. Internal
//! details are logged once here and never sent to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::{ErrorBody, ErrorDetail};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{1}")]
    BadRequest(&'static str, String),
    #[error("not signed in")]
    Unauthorized,
    #[error("wrong username or password")]
    BadCredentials,
    /// A signed-in person's current password was wrong (changing it).
    #[error("Your current password is not right.")]
    WrongPassword,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A 404 whose message names what was looked for ("Nobody is called bob.").
    #[error("{0}")]
    NotFoundSaying(String),
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("{0}")]
    TooLarge(String),
    #[error("too many attempts; retry in {0} s")]
    RateLimited(u64),
    /// 429 past a quota whose message says the limit in words.
    #[error("{0}")]
    Quota(String),
    #[error("too many live connections (at most {0} per user); close another tab or retry later")]
    TooManyConnections(u32),
    #[error("{1}")]
    Unavailable(&'static str, String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest(code, message.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::BadCredentials | ApiError::WrongPassword => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::NotFoundSaying(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(..) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited(_) | ApiError::Quota(_) | ApiError::TooManyConnections(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable(..) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(code, _) => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::BadCredentials => "bad_credentials",
            ApiError::WrongPassword => "wrong_password",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) | ApiError::NotFoundSaying(_) => "not_found",
            ApiError::Conflict(code, _) => code,
            ApiError::TooLarge(_) => "too_large",
            ApiError::RateLimited(_) | ApiError::Quota(_) => "rate_limited",
            ApiError::TooManyConnections(_) => "too_many_connections",
            ApiError::Unavailable(code, _) => code,
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message: self.to_string(),
            },
        }
    }
}

/// The wire code of [`ApiError::storage_unavailable`].
pub const STORAGE_UNAVAILABLE: &str = "storage_unavailable";

impl ApiError {
    /// The database could not be used just now (a full disk, a lock held past the busy timeout,
    /// a PostgreSQL outage): 503 with `Retry-After`, the cause logged, never sent.
    pub fn storage_unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "storage unavailable");
        ApiError::Unavailable(
            STORAGE_UNAVAILABLE,
            "The server cannot reach its storage just now. Retry in a moment.".into(),
        )
    }
}

/// Whether a database error is the storage being unavailable for a while (so worth a retry)
/// rather than a bug: no connection, a lock not granted in time, a full or failing disk, a
/// server shutting down.
pub fn storage_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if let Ok(n) = code.parse::<i32>() {
                // SQLite result codes (extended; the primary code is the low byte): BUSY,
                // LOCKED, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL.
                matches!(n & 0xff, 5 | 6 | 8 | 10 | 13 | 14 | 15)
            } else {
                // PostgreSQL SQLSTATEs: connection exceptions (08), insufficient resources such
                // as a full disk (53), operator intervention (57: shutdown, a statement or lock
                // timeout), system errors (58), lock not available (55P03), serialization
                // failures and deadlocks (40001, 40P01).
                ["08", "53", "57", "58"].iter().any(|c| code.starts_with(c))
                    || matches!(&*code, "55P03" | "40001" | "40P01")
            }
        }
        _ => false,
    }
}

/// The same for the group-commit writer's own SQLite connection.
fn rusqlite_unavailable(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(
            C::DatabaseBusy
                | C::DatabaseLocked
                | C::ReadOnly
                | C::SystemIoFailure
                | C::DiskFull
                | C::CannotOpen
                | C::FileLockingProtocolFailed
        )
    )
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if storage_unavailable(&e) {
            return ApiError::storage_unavailable(&e);
        }
        ApiError::Internal(e.into())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        let unavailable = e.chain().any(|cause| {
            cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(storage_unavailable)
                || cause
                    .downcast_ref::<rusqlite::Error>()
                    .is_some_and(rusqlite_unavailable)
        });
        if unavailable {
            return ApiError::storage_unavailable(&format!("{e:#}"));
        }
        ApiError::Internal(e)
    }
}

impl From<tower_sessions::session::Error> for ApiError {
    fn from(e: tower_sessions::session::Error) -> Self {
        use tower_sessions::session::Error as E;
        use tower_sessions::session_store::Error as S;
        match e {
            // The session store is the database: its backend failing is the storage failing
            // (the store passes the cause on as text only).
            E::Store(S::Backend(_)) => ApiError::storage_unavailable(&e),
            e => ApiError::Internal(e.into()),
        }
    }
}

/// Wraps the session layer: when saving a session fails (the database is unavailable),
/// tower-sessions answers a bare 500 with no body; this turns it into our JSON 503
/// `storage_unavailable` with `Retry-After`. Our own 500s always carry a JSON body and a
/// content type, so only that bare answer is replaced.
/// A sign-in form posted without JavaScript is sent back to its page with the error's code
/// instead (it shows the words for it), as its other errors are.
pub async fn bare_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let form_page = form_page_of(&req);
    let res = next.run(req).await;
    if res.status() == StatusCode::INTERNAL_SERVER_ERROR
        && !res.headers().contains_key(header::CONTENT_TYPE)
        && axum::body::HttpBody::size_hint(res.body()).exact() == Some(0)
    {
        let err = ApiError::storage_unavailable(&"the session layer could not save a session");
        if let Some(page) = form_page {
            return axum::response::Redirect::to(&format!("{page}?error={}", err.code()))
                .into_response();
        }
        return err.into_response();
    }
    res
}

/// The page of a sign-in or sign-up form posted as a plain HTML form, if `req` is one.
fn form_page_of(req: &axum::extract::Request) -> Option<&'static str> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    match req.uri().path() {
        "/api/auth/login" if form => Some("/login"),
        "/api/auth/signup" if form => Some("/signup"),
        _ => None,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "internal error");
        }
        let mut res = (self.status(), axum::Json(self.body())).into_response();
        match self {
            ApiError::RateLimited(secs) => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            ApiError::TooManyConnections(_) => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            // Passing trouble (a restart, a failed write, too many connections): come back soon.
            // A switched-off transport is not passing: the client moves to another one.
            ApiError::Unavailable(code, _) if code != "transport_disabled" => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            _ => {}
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The longest request target (path and query) the server reads; longer ones get a JSON 414.
/// hyper itself refuses targets of 64 KiB and more with a bare 414 before any of our code runs.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Header lines hyper parses (its default, kept: more would put every request's header array
/// on the heap, about 5% of a poll's cost); a request with more gets hyper's own bare 431.
pub const MAX_HEADERS: usize = 100;
/// Total size of a request's header names and values; more gets a JSON 431. (hyper's own read
/// buffer, about 400 KiB, bounds the head before this: a larger one gets its bare 431.)
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses an over-long request target (414 `uri_too_long`) or over-large headers (431
/// `headers_too_large`) with the JSON error, before routing. Runs in front of every route.
pub async fn oversized_head(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return too_large_head(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("The address is too long (at most {MAX_URI_BYTES} bytes)."),
        );
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if bytes > MAX_HEADER_BYTES {
        return too_large_head(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "The request's headers are too large (at most {MAX_HEADERS} headers and {} KiB).",
                MAX_HEADER_BYTES / 1024
            ),
        );
    }
    next.run(req).await
}

fn too_large_head(status: StatusCode, code: &'static str, message: String) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.into(),
            message,
        },
    };
    let mut res = (status, axum::Json(body)).into_response();
    // The rest of such a request is not read: the connection is not reused.
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// The answer to an /api path no route takes.
pub async fn api_not_found() -> ApiError {
    ApiError::NotFound("route")
}

/// The answer to a method a route does not take: 405 with the API's JSON error.
pub async fn method_not_allowed() -> Response {
    let err = ApiError::bad(
        "method_not_allowed",
        "This route does not take that method.",
    );
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(err.body()),
    )
        .into_response()
}
