//! Sending a file to the server (`POST /api/uploads?name=`), for the browser. It goes by
//! `XMLHttpRequest` rather than fetch because only XHR reports upload progress (fetch streams
//! requests only over HTTP/2 and says nothing about how far the bytes got), and an XHR can be
//! aborted from the Cancel button. The file is handed to the browser as it is: it reads the bytes
//! from disk as they go, so nothing is held in memory here.

use crate::api::ApiFailure;
use protocol::Upload;
use send_wrapper::SendWrapper;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// An upload under way: [`Sending::cancel`] stops it.
#[derive(Clone)]
pub struct Sending(SendWrapper<web_sys::XmlHttpRequest>);

impl Sending {
    /// Stops the upload; its `done` is then called with [`Finished::Cancelled`].
    pub fn cancel(&self) {
        let _ = self.0.abort();
    }
}

/// How an upload ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    Stored(Upload),
    Failed(ApiFailure),
    Cancelled,
}

/// Starts sending `file`. `progress` gets the fraction sent (0 to 1) as the bytes go; `done` is
/// called once at the end.
pub fn start(
    file: &web_sys::File,
    progress: impl Fn(f64) + 'static,
    done: impl FnOnce(Finished) + 'static,
) -> Result<Sending, ApiFailure> {
    let xhr = web_sys::XmlHttpRequest::new().map_err(ApiFailure::network)?;
    let name = String::from(js_sys::encode_uri_component(&file.name()));
    xhr.open_with_async("POST", &format!("/api/uploads?name={name}"), true)
        .map_err(ApiFailure::network)?;
    let kind = file.type_();
    let kind = if kind.is_empty() {
        "application/octet-stream".to_string()
    } else {
        kind
    };
    xhr.set_request_header("Content-Type", &kind)
        .map_err(ApiFailure::network)?;
    xhr.set_request_header("Accept", "application/json")
        .map_err(ApiFailure::network)?;

    let on_progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |ev: web_sys::ProgressEvent| {
            if ev.length_computable() && ev.total() > 0.0 {
                progress((ev.loaded() / ev.total()).clamp(0.0, 1.0));
            }
        });
    let upload = xhr.upload().map_err(ApiFailure::network)?;
    upload.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));

    // `loadend` comes once, after a load, an error or an abort; it also owns the progress
    // closure, which is dropped with it (no progress event comes after `loadend`).
    let aborted = std::rc::Rc::new(std::cell::Cell::new(false));
    let on_abort = {
        let aborted = aborted.clone();
        Closure::once_into_js(move || aborted.set(true))
    };
    xhr.set_onabort(Some(on_abort.unchecked_ref()));
    let xhr2 = xhr.clone();
    let on_end = Closure::once_into_js(move || {
        drop(on_progress);
        if aborted.get() {
            done(Finished::Cancelled);
        } else {
            done(answer(&xhr2));
        }
    });
    xhr.set_onloadend(Some(on_end.unchecked_ref()));
    xhr.send_with_opt_blob(Some(file))
        .map_err(ApiFailure::network)?;
    Ok(Sending(SendWrapper::new(xhr)))
}

/// What the server said, as [`Finished`].
fn answer(xhr: &web_sys::XmlHttpRequest) -> Finished {
    let status = xhr.status().unwrap_or(0);
    let text = xhr.response_text().ok().flatten().unwrap_or_default();
    if status == 0 {
        return Finished::Failed(ApiFailure::network("the upload did not reach the server"));
    }
    if !(200..300).contains(&status) {
        return Finished::Failed(ApiFailure::from_answer(status, &text));
    }
    match serde_json::from_str::<Upload>(&text) {
        Ok(u) => Finished::Stored(u),
        Err(_) => Finished::Failed(ApiFailure::from_status(status)),
    }
}
