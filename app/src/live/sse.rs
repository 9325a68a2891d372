//! The SSE client: an EventSource carrying its feeds (one event name per feed). The browser's
//! own reconnect (fixed delay, gives up on an HTTP error) is replaced by ours: on error the
//! stream is closed and reopened with backoff from the manager's cursor.

use super::{schedule_retry, Conn, ConnSpec, Report};
use protocol::{close, EventData, Feed, TypedEvent};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

type Callback = Closure<dyn FnMut(JsValue)>;

pub(crate) struct SseConn {
    spec: ConnSpec,
    source: RefCell<Option<web_sys::EventSource>>,
    callbacks: RefCell<Vec<Callback>>,
    attempt: Cell<u32>,
    open: Cell<bool>,
    waiting: Cell<bool>,
    closed: Cell<bool>,
    me: RefCell<Weak<SseConn>>,
}

impl SseConn {
    pub(crate) fn open(spec: ConnSpec) -> Rc<dyn Conn> {
        let conn = Rc::new(SseConn {
            spec,
            source: RefCell::new(None),
            callbacks: RefCell::new(Vec::new()),
            attempt: Cell::new(0),
            open: Cell::new(false),
            waiting: Cell::new(false),
            closed: Cell::new(false),
            me: RefCell::new(Weak::new()),
        });
        *conn.me.borrow_mut() = Rc::downgrade(&conn);
        let c = conn.clone();
        leptos::task::spawn_local(async move { c.connect() });
        conn
    }

    fn connect(self: &Rc<Self>) {
        if self.closed.get() {
            return;
        }
        self.waiting.set(false);
        let mut url = format!("/api/live/sse?feeds={}", self.spec.feeds_param());
        if let Some(c) = self.spec.cursor() {
            url.push_str(&format!("&cursor={c}"));
        }
        if self.attempt.get() > 0 {
            url.push_str("&reconnect=1");
        }
        let source = match web_sys::EventSource::new(&url) {
            Ok(s) => s,
            Err(_) => {
                self.retry();
                return;
            }
        };
        self.spec.report(Report::Wire {
            requests: 1,
            bytes: 0,
            empty: false,
        });
        let mut callbacks = Vec::new();
        // Events are named by feed; control carries hello and disconnect.
        for feed in self
            .spec
            .feeds
            .iter()
            .chain(std::iter::once(&Feed::Control))
        {
            let this = Rc::downgrade(self);
            let cb = Callback::new(move |ev: JsValue| {
                let Some(this) = this.upgrade() else { return };
                let Some(text) = ev
                    .dyn_into::<web_sys::MessageEvent>()
                    .ok()
                    .and_then(|m| m.data().as_string())
                else {
                    return;
                };
                if let Ok(event) = TypedEvent::parse(&text) {
                    this.receive(event, frame_bytes(&text));
                }
            });
            let _ =
                source.add_event_listener_with_callback(feed.as_str(), cb.as_ref().unchecked_ref());
            callbacks.push(cb);
        }
        let this = Rc::downgrade(self);
        let on_error = Callback::new(move |_| {
            let Some(this) = this.upgrade() else { return };
            // Ours, not the browser's: close and come back with backoff and the right cursor.
            this.drop_source();
            this.open.set(false);
            if !this.closed.get() {
                this.retry();
            }
        });
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        callbacks.push(on_error);
        self.drop_source();
        *self.source.borrow_mut() = Some(source);
        *self.callbacks.borrow_mut() = callbacks;
    }

    fn receive(self: &Rc<Self>, event: TypedEvent, bytes: u64) {
        let id_bytes = event.id.map_or(0, |id| 5 + id.to_string().len() as u64);
        let bytes = bytes + id_bytes + 8 + event.feed.as_str().len() as u64;
        match &event.data {
            EventData::Hello(hello) => {
                self.attempt.set(0);
                self.open.set(true);
                let cursor = Some(hello.cursor);
                self.spec.report(Report::Open { cursor });
                self.spec.report(Report::Wire {
                    requests: 0,
                    bytes,
                    empty: false,
                });
            }
            EventData::Disconnect(d) => {
                let code = d.code;
                self.drop_source();
                self.open.set(false);
                match code {
                    close::TRANSPORT_DISABLED => self.spec.report(Report::Disabled),
                    close::UNAUTHORIZED => self.spec.report(Report::Unauthorized),
                    _ => self.retry(),
                }
            }
            _ => self.spec.report(Report::Event(event, bytes)),
        }
    }

    fn retry(self: &Rc<Self>) {
        if self.closed.get() {
            return;
        }
        let this = Rc::downgrade(self);
        schedule_retry(&self.spec, &self.attempt, &self.waiting, move || {
            if let Some(this) = this.upgrade() {
                if this.waiting.get() {
                    this.connect();
                }
            }
        });
    }

    fn drop_source(&self) {
        if let Some(s) = self.source.borrow_mut().take() {
            s.close();
            s.set_onerror(None);
        }
        self.callbacks.borrow_mut().clear();
    }
}

/// Bytes of an SSE frame's `data:` lines for `text` (one line per line of text, and the blank
/// line that ends the frame); the caller adds the `id:` and `event:` lines.
fn frame_bytes(text: &str) -> u64 {
    text.split('\n').map(|l| 7 + l.len() as u64).sum::<u64>() + 1
}

impl Conn for SseConn {
    fn kick(&self) {
        if self.waiting.get() {
            if let Some(this) = self.me.borrow().upgrade() {
                this.attempt.set(0);
                this.connect();
            }
        }
    }

    fn close(&self) {
        self.closed.set(true);
        self.waiting.set(false);
        self.drop_source();
    }
}
