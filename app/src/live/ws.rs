//! The WebSocket client: one socket carrying its feeds; sends chat frames and typing. Reconnects
//! with backoff from the manager's cursor; close codes say whether to come back.

use super::{schedule_retry, Conn, ConnSpec, Report};
use leptos::prelude::*;
use protocol::{close, ClientFrame, EventData, TypedEvent};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

type Callback = Closure<dyn FnMut(JsValue)>;

pub(crate) struct WsConn {
    spec: ConnSpec,
    socket: RefCell<Option<web_sys::WebSocket>>,
    /// The current socket's callbacks, dropped with it.
    callbacks: RefCell<Vec<Callback>>,
    attempt: Cell<u32>,
    open: Cell<bool>,
    waiting: Cell<bool>,
    closed: Cell<bool>,
    /// Itself, for callers that only hold `&self` (kick).
    me: RefCell<std::rc::Weak<WsConn>>,
}

impl WsConn {
    pub(crate) fn open(spec: ConnSpec) -> Rc<dyn Conn> {
        let conn = Rc::new(WsConn {
            spec,
            socket: RefCell::new(None),
            callbacks: RefCell::new(Vec::new()),
            attempt: Cell::new(0),
            open: Cell::new(false),
            waiting: Cell::new(false),
            closed: Cell::new(false),
            me: RefCell::new(std::rc::Weak::new()),
        });
        *conn.me.borrow_mut() = Rc::downgrade(&conn);
        // Connect after the caller has registered this connection.
        let c = conn.clone();
        leptos::task::spawn_local(async move { c.connect() });
        conn
    }

    fn url(&self) -> String {
        let loc = window().location();
        let scheme = if loc.protocol().unwrap_or_default() == "https:" {
            "wss"
        } else {
            "ws"
        };
        let host = loc.host().unwrap_or_default();
        let mut url = format!(
            "{scheme}://{host}/api/live/ws?feeds={}",
            self.spec.feeds_param()
        );
        if let Some(c) = self.spec.cursor() {
            url.push_str(&format!("&cursor={c}"));
        }
        if self.attempt.get() > 0 {
            url.push_str("&reconnect=1");
        }
        url
    }

    fn connect(self: &Rc<Self>) {
        if self.closed.get() {
            return;
        }
        self.waiting.set(false);
        let ws = match web_sys::WebSocket::new(&self.url()) {
            Ok(ws) => ws,
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
        let this = Rc::downgrade(self);
        let on_message = Callback::new(move |ev: JsValue| {
            let Some(this) = this.upgrade() else { return };
            let Some(text) = ev
                .dyn_into::<web_sys::MessageEvent>()
                .ok()
                .and_then(|m| m.data().as_string())
            else {
                return;
            };
            // Payload plus the frame header the server wrote (2, 4 or 10 bytes).
            let bytes = text.len() as u64
                + match text.len() {
                    0..=125 => 2,
                    126..=65_535 => 4,
                    _ => 10,
                };
            match TypedEvent::parse(&text) {
                Ok(TypedEvent {
                    data: EventData::Hello(hello),
                    ..
                }) => {
                    this.attempt.set(0);
                    this.open.set(true);
                    let cursor = Some(hello.cursor);
                    this.spec.report(Report::Open { cursor });
                    this.spec.report(Report::Wire {
                        requests: 0,
                        bytes,
                        empty: false,
                    });
                }
                Ok(event) => this.spec.report(Report::Event(event, bytes)),
                // Acks and errors of sends: traffic, not events.
                Err(_) => this.spec.report(Report::Wire {
                    requests: 0,
                    bytes,
                    empty: false,
                }),
            }
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        callbacks.push(on_message);

        let this = Rc::downgrade(self);
        let on_close = Callback::new(move |ev: JsValue| {
            let Some(this) = this.upgrade() else { return };
            let (code, _reason) = ev
                .dyn_into::<web_sys::CloseEvent>()
                .map(|c| (c.code(), c.reason()))
                .unwrap_or((close::INTERNAL, String::new()));
            this.closed_by_server(code);
        });
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        callbacks.push(on_close);

        self.drop_socket();
        *self.socket.borrow_mut() = Some(ws);
        *self.callbacks.borrow_mut() = callbacks;
    }

    fn closed_by_server(self: &Rc<Self>, code: u16) {
        self.drop_socket();
        self.open.set(false);
        if self.closed.get() {
            return;
        }
        match code {
            close::UNAUTHORIZED => self.spec.report(Report::Unauthorized),
            close::TRANSPORT_DISABLED => self.spec.report(Report::Disabled),
            _ => self.retry(),
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

    fn drop_socket(&self) {
        if let Some(ws) = self.socket.borrow_mut().take() {
            ws.set_onmessage(None);
            ws.set_onclose(None);
            let _ = ws.close();
        }
        self.callbacks.borrow_mut().clear();
    }
}

impl Conn for WsConn {
    fn send(&self, frame: &ClientFrame) -> bool {
        if !self.open.get() {
            return false;
        }
        let socket = self.socket.borrow();
        let Some(ws) = socket.as_ref() else {
            return false;
        };
        if ws.ready_state() != web_sys::WebSocket::OPEN {
            return false;
        }
        serde_json::to_string(frame).is_ok_and(|text| ws.send_with_str(&text).is_ok())
    }

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
        self.drop_socket();
    }
}
