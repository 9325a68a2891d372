//! The polling clients. Short poll: ask every `short_poll_ms` (at once again when an answer
//! came back full). Long poll: ask with `wait`, and ask again as soon as the answer arrives.
//! Each answer's cursor is the next request's; a switch aborts the request in flight.

use super::{backoff_ms, Conn, ConnSpec, Report};
use leptos::prelude::*;
use protocol::{close, ErrorBody, EventData, PollAnswer, Transport, TypedEvent};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Answers at least this long are treated as "the server has more": poll again at once.
const FULL_BATCH: usize = 200;

pub(crate) struct PollConn {
    spec: ConnSpec,
    cursor: Cell<Option<i64>>,
    /// Position among recent ephemerals (typing, presence), so none is missed between polls.
    eph: Cell<Option<u64>>,
    abort: RefCell<Option<web_sys::AbortController>>,
    attempt: Cell<u32>,
    opened: Cell<bool>,
    closed: Cell<bool>,
    /// Set while sleeping between polls or backing off; `kick` wakes it.
    waiting: Cell<bool>,
    generation: Cell<u32>,
    me: RefCell<Weak<PollConn>>,
}

enum Outcome {
    /// The answer, and the bytes of its status line, headers and body.
    Answer(PollAnswer<TypedEvent>, u64),
    Status(u16, String),
    Network,
}

impl PollConn {
    pub(crate) fn open(spec: ConnSpec) -> Rc<dyn Conn> {
        let conn = Rc::new(PollConn {
            cursor: Cell::new(spec.cursor()),
            eph: Cell::new(None),
            spec,
            abort: RefCell::new(None),
            attempt: Cell::new(0),
            opened: Cell::new(false),
            closed: Cell::new(false),
            waiting: Cell::new(false),
            generation: Cell::new(0),
            me: RefCell::new(Weak::new()),
        });
        *conn.me.borrow_mut() = Rc::downgrade(&conn);
        conn.schedule(0);
        conn
    }

    fn wait_s(&self) -> u32 {
        if self.spec.transport == Transport::LongPoll {
            self.spec.long_poll_s.clamp(1, 30)
        } else {
            0
        }
    }

    /// Runs the next poll after `delay_ms`, unless a newer schedule or a close came first.
    fn schedule(self: &Rc<Self>, delay_ms: u32) {
        let gen = self.generation.get() + 1;
        self.generation.set(gen);
        self.waiting.set(delay_ms > 0);
        let this = Rc::downgrade(self);
        let run = move || {
            if let Some(this) = this.upgrade() {
                if this.generation.get() == gen && !this.closed.get() {
                    this.waiting.set(false);
                    leptos::task::spawn_local(async move { this.poll_once().await });
                }
            }
        };
        if delay_ms == 0 {
            leptos::task::spawn_local(async move { run() });
        } else {
            set_timeout(run, std::time::Duration::from_millis(delay_ms as u64));
        }
    }

    async fn poll_once(self: Rc<Self>) {
        // The first long poll holds at most a second, so a switch to long polling is "open"
        // (and the old connection closes) without waiting for the next event.
        let wait = if self.opened.get() {
            self.wait_s()
        } else {
            self.wait_s().min(1)
        };
        let mut url = format!(
            "/api/live/poll?feeds={}&wait={wait}",
            self.spec.feeds_param()
        );
        if let Some(c) = self.cursor.get() {
            url.push_str(&format!("&cursor={c}"));
        }
        if let Some(e) = self.eph.get() {
            url.push_str(&format!("&eph={e}"));
        }
        if self.attempt.get() > 0 {
            url.push_str("&reconnect=1");
        }
        let outcome = self.fetch(&url).await;
        if self.closed.get() {
            return;
        }
        match outcome {
            Outcome::Answer(answer, total_bytes) => {
                self.attempt.set(0);
                if !self.opened.get() {
                    self.opened.set(true);
                    self.spec.report(Report::Open {
                        cursor: Some(answer.cursor),
                    });
                }
                // Each event's own JSON (and its comma) is its bytes; the rest is overhead.
                let sizes: Vec<u64> = answer
                    .events
                    .iter()
                    .map(|e| serde_json::to_string(e).map_or(0, |s| s.len() as u64 + 1))
                    .collect();
                self.spec.report(Report::Wire {
                    requests: 1,
                    bytes: total_bytes.saturating_sub(sizes.iter().sum()),
                    empty: answer.events.is_empty(),
                });
                let full = answer.events.len() >= FULL_BATCH;
                let mut disabled = false;
                for (ev, bytes) in answer.events.into_iter().zip(sizes) {
                    if let EventData::Disconnect(d) = &ev.data {
                        disabled = d.code == close::TRANSPORT_DISABLED;
                        continue;
                    }
                    self.spec.report(Report::Event(ev, bytes));
                }
                self.cursor.set(Some(answer.cursor));
                if answer.eph.is_some() {
                    self.eph.set(answer.eph);
                }
                self.spec.report(Report::Cursor(answer.cursor));
                if disabled {
                    self.spec.report(Report::Disabled);
                    return;
                }
                let next = if full || self.spec.transport == Transport::LongPoll {
                    0
                } else {
                    self.spec.short_poll_ms
                };
                self.schedule(next);
            }
            Outcome::Status(401, _) => self.spec.report(Report::Unauthorized),
            Outcome::Status(503, code) if code == "transport_disabled" => {
                self.spec.report(Report::Disabled)
            }
            Outcome::Status(_, _) | Outcome::Network => {
                let attempt = self.attempt.get() + 1;
                self.attempt.set(attempt);
                self.opened.set(false);
                let delay = backoff_ms(attempt);
                self.spec.report(Report::Retrying {
                    attempt,
                    retry_in_ms: delay,
                });
                self.schedule(delay);
            }
        }
    }

    async fn fetch(&self, url: &str) -> Outcome {
        let Ok(controller) = web_sys::AbortController::new() else {
            return Outcome::Network;
        };
        let init = web_sys::RequestInit::new();
        init.set_method("GET");
        init.set_credentials(web_sys::RequestCredentials::SameOrigin);
        init.set_signal(Some(&controller.signal()));
        *self.abort.borrow_mut() = Some(controller);
        let Ok(request) = web_sys::Request::new_with_str_and_init(url, &init) else {
            return Outcome::Network;
        };
        let Ok(resp) = JsFuture::from(window().fetch_with_request(&request)).await else {
            return Outcome::Network;
        };
        let Ok(resp) = resp.dyn_into::<web_sys::Response>() else {
            return Outcome::Network;
        };
        let Ok(text) = resp.text() else {
            return Outcome::Network;
        };
        let Ok(text) = JsFuture::from(text).await else {
            return Outcome::Network;
        };
        let text = text.as_string().unwrap_or_default();
        self.abort.borrow_mut().take();
        let status = resp.status();
        if status == 200 {
            match serde_json::from_str::<PollAnswer<TypedEvent>>(&text) {
                Ok(a) => Outcome::Answer(a, response_bytes(&resp, &text)),
                Err(_) => Outcome::Status(status, "bad_response".into()),
            }
        } else {
            let code = serde_json::from_str::<ErrorBody>(&text)
                .map(|e| e.error.code)
                .unwrap_or_default();
            Outcome::Status(status, code)
        }
    }
}

/// Bytes of an answer as the browser sees it: status line, headers (`name: value\r\n` each,
/// and the blank line) and body. What a proxy or the connection adds is not visible here.
fn response_bytes(resp: &web_sys::Response, body: &str) -> u64 {
    let mut headers = 0u64;
    if let Ok(Some(iter)) = js_sys::try_iter(&resp.headers()) {
        for pair in iter.flatten() {
            let pair: js_sys::Array = pair.unchecked_into();
            let name = pair.get(0).as_string().unwrap_or_default();
            let value = pair.get(1).as_string().unwrap_or_default();
            headers += (name.len() + value.len() + 4) as u64;
        }
    }
    17 + headers + 2 + body.len() as u64
}

impl Conn for PollConn {
    fn kick(&self) {
        if self.waiting.get() {
            if let Some(this) = self.me.borrow().upgrade() {
                this.attempt.set(0);
                this.schedule(0);
            }
        }
    }

    fn close(&self) {
        self.closed.set(true);
        self.generation.set(self.generation.get() + 1);
        if let Some(c) = self.abort.borrow_mut().take() {
            c.abort();
        }
    }
}
