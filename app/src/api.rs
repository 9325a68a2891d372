//! JSON over fetch, for the browser. Errors come back as [`ApiFailure`] with the server's code
//! and message (status 0: the network failed). The message is always words for people: what the
//! browser or a parser said (a `TypeError` and its stack, say) goes to the console only.

use protocol::ErrorBody;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiFailure {
    /// An answer that carried no error body of ours (a proxy's page, say), in words.
    pub fn from_status(status: u16) -> Self {
        ApiFailure {
            status,
            code: "http".into(),
            message: status_words(status),
        }
    }

    /// A refusal as the server wrote it (our JSON error body), or in words for its status.
    pub fn from_answer(status: u16, text: &str) -> Self {
        match serde_json::from_str::<ErrorBody>(text) {
            Ok(e) => ApiFailure {
                status,
                code: e.error.code,
                message: e.error.message,
            },
            Err(_) => ApiFailure::from_status(status),
        }
    }

    pub(crate) fn network(what: impl std::fmt::Debug) -> Self {
        leptos::logging::warn!("request failed: {what:?}");
        ApiFailure {
            status: 0,
            code: "network".into(),
            message: "Could not reach the server. Check your connection and try again.".into(),
        }
    }

    /// True when trying again later may work: the network, a timeout, too many requests, or the
    /// server's side (5xx). Anything else is the server saying no to this request.
    pub fn is_transient(&self) -> bool {
        is_transient(self.status)
    }
}

/// See [`ApiFailure::is_transient`].
pub fn is_transient(status: u16) -> bool {
    matches!(status, 0 | 408 | 429) || status >= 500
}

/// Words for an answer that carried no error body of ours (a proxy's page, say).
fn status_words(status: u16) -> String {
    match status {
        413 => "That is too large for the server.".into(),
        429 => "Too many requests. Wait a moment and try again.".into(),
        502..=504 => "The server is not answering right now. Try again in a moment.".into(),
        s if s >= 500 => "Something went wrong on the server. Try again in a moment.".into(),
        _ => "The server could not do that.".into(),
    }
}

pub async fn get<T: DeserializeOwned>(url: &str) -> Result<T, ApiFailure> {
    request("GET", url, None).await
}

pub async fn post<B: Serialize, T: DeserializeOwned>(url: &str, body: &B) -> Result<T, ApiFailure> {
    let body = serde_json::to_string(body).map_err(ApiFailure::network)?;
    request("POST", url, Some(body)).await
}

pub async fn put<B: Serialize, T: DeserializeOwned>(url: &str, body: &B) -> Result<T, ApiFailure> {
    let body = serde_json::to_string(body).map_err(ApiFailure::network)?;
    request("PUT", url, Some(body)).await
}

pub async fn patch<B: Serialize, T: DeserializeOwned>(
    url: &str,
    body: &B,
) -> Result<T, ApiFailure> {
    let body = serde_json::to_string(body).map_err(ApiFailure::network)?;
    request("PATCH", url, Some(body)).await
}

/// A request without a body whose answer carries nothing we need (`DELETE`, a bodiless `PUT`).
pub async fn send_empty(method: &str, url: &str) -> Result<(), ApiFailure> {
    request::<serde::de::IgnoredAny>(method, url, None)
        .await
        .map(|_| ())
}

/// A POST without a body; whatever the answer carries is ignored.
pub async fn post_empty(url: &str) -> Result<(), ApiFailure> {
    request::<serde::de::IgnoredAny>("POST", url, None)
        .await
        .map(|_| ())
}

async fn request<T: DeserializeOwned>(
    method: &str,
    url: &str,
    body: Option<String>,
) -> Result<T, ApiFailure> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    let headers = web_sys::Headers::new().map_err(ApiFailure::network)?;
    headers
        .set("Accept", "application/json")
        .map_err(ApiFailure::network)?;
    if let Some(body) = &body {
        headers
            .set("Content-Type", "application/json")
            .map_err(ApiFailure::network)?;
        init.set_body(&wasm_bindgen::JsValue::from_str(body));
    }
    init.set_headers(&headers);
    let request =
        web_sys::Request::new_with_str_and_init(url, &init).map_err(ApiFailure::network)?;
    let window = web_sys::window().ok_or_else(|| ApiFailure::network("no window"))?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(ApiFailure::network)?
        .dyn_into()
        .map_err(ApiFailure::network)?;
    let text = JsFuture::from(response.text().map_err(ApiFailure::network)?)
        .await
        .map_err(ApiFailure::network)?
        .as_string()
        .unwrap_or_default();
    let status = response.status();
    if !(200..300).contains(&status) {
        return Err(ApiFailure::from_answer(status, &text));
    }
    let text = if text.trim().is_empty() {
        "null"
    } else {
        &text
    };
    serde_json::from_str(text).map_err(|e| {
        leptos::logging::warn!("unexpected answer from {url}: {e}");
        ApiFailure {
            status,
            code: "bad_response".into(),
            message: "The server's answer could not be read. Try reloading the page.".into(),
        }
    })
}
