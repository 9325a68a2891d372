//! The chat screen: the room list, a room's messages, and the composer. State lives in one
//! [`Chat`] of signals fed by the REST API (initial loads, history) and the live feed (new
//! messages, acks, membership changes, typing).

use crate::live::{self, ConnState, LiveUi};
use crate::{api, outbox, testid, Me};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_location, use_navigate};
use protocol::{
    kind, ClientFrame, CreateRoom, Event, Feed, Message, MessageList, Room, RoomList, Transport,
    TransportSettings, User, UsernameBody, CHOOSABLE_FEEDS,
};
use std::collections::HashMap;

/// No input for this long (or a hidden tab) shows me as idle.
const IDLE_AFTER_MS: f64 = 5.0 * 60.0 * 1000.0;
/// How long a typing notice shows without a refresh.
const TYPING_SHOW_MS: f64 = 6_000.0;
/// Least time between two typing notices sent while the user types.
const TYPING_SEND_EVERY_MS: f64 = 3_000.0;
/// A send with no ack by then goes back into line and is sent again (same client id: the server
/// keeps it once).
const ACK_TIMEOUT_MS: u64 = 15_000;
/// After a transient failure (network, 5xx, 429) the outbox is tried again this much later, or
/// as soon as the chat feed is live again.
const RETRY_SOON_MS: u64 = 3_000;
/// Messages from one author closer together than this share one header.
const GROUP_GAP_MS: i64 = 5 * 60 * 1000;
/// History page size for "load older".
const PAGE: u32 = 50;

#[derive(Debug, Clone, PartialEq)]
pub enum SendState {
    Sent,
    /// On its way (or next in line) while the chat feed is live.
    Pending,
    /// In the outbox while the connection is down: it goes out by itself once it is back.
    Queued,
    /// Refused for good, with a short reason for people: Retry or Discard.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct UiMessage {
    pub msg: Message,
    pub state: SendState,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomLog {
    /// Confirmed messages in seq order, then pending or failed sends.
    pub msgs: Vec<UiMessage>,
    pub has_older: bool,
    pub loaded: bool,
}

impl RoomLog {
    /// Adds or replaces a confirmed message (matched by id, or by author and client id for the
    /// optimistic copy), keeping seq order. Returns true if it was new.
    fn confirm(&mut self, msg: Message) -> bool {
        let before = self.msgs.len();
        self.msgs.retain(|m| {
            m.msg.id != msg.id
                && !(m.msg.client_id == msg.client_id && m.msg.author.id == msg.author.id)
        });
        let was_new = self.msgs.len() == before;
        let pos = self
            .msgs
            .iter()
            .position(|m| m.state != SendState::Sent || m.msg.seq > msg.seq)
            .unwrap_or(self.msgs.len());
        self.msgs.insert(
            pos,
            UiMessage {
                msg,
                state: SendState::Sent,
            },
        );
        was_new
    }

    fn set_state(&mut self, client_id: &str, state: SendState) {
        for m in self.msgs.iter_mut() {
            if m.msg.client_id == client_id && m.state != SendState::Sent {
                m.state = state.clone();
            }
        }
    }

    fn last_confirmed(&self) -> Option<&Message> {
        self.msgs
            .iter()
            .rev()
            .find(|m| m.state == SendState::Sent)
            .map(|m| &m.msg)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Typist {
    room_id: String,
    username: String,
    until: f64,
}

/// The chat screen's state, shared through context. All fields are signals (Copy).
/// How long a success notice shows.
const NOTICE_OK_MS: u64 = 4_000;

thread_local! {
    static NOTICE_IDS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The line under the header: an error until its cause is gone, or a passing success.
#[derive(Debug, Clone, PartialEq)]
struct Notice {
    id: u64,
    text: String,
    ok: bool,
}

#[derive(Clone, Copy)]
pub struct Chat {
    me: StoredValue<User>,
    pub(crate) rooms: RwSignal<Vec<Room>>,
    logs: RwSignal<HashMap<String, RoomLog>>,
    current: Memo<Option<String>>,
    pub(crate) live: LiveUi,
    typing: RwSignal<Vec<Typist>>,
    notice: RwSignal<Option<Notice>>,
    rooms_loaded: RwSignal<bool>,
    /// Minutes from UTC for displayed times: 0 (UTC) as rendered on the server, the browser's
    /// own once hydrated.
    tz_offset: RwSignal<i32>,
    /// Notifications and jobs.
    pub activity: crate::activity::Activity,
    /// Who is online or idle (user id → status); absent means offline.
    presence: RwSignal<HashMap<String, String>>,
    /// When this tab last saw input (ms), for idle.
    last_input: StoredValue<f64>,
    idle_sent: StoredValue<bool>,
    /// Messages written and not yet acknowledged, in the order written (mirrored in
    /// localStorage, see [`outbox`]).
    outbox: StoredValue<Vec<outbox::Outgoing>>,
    /// The outbox entry on its way now (client id, attempt): one at a time, so they arrive in
    /// the order written.
    inflight: StoredValue<Option<(String, u32)>>,
    attempts: StoredValue<u32>,
}

fn now() -> f64 {
    crate::time::now_ms() as f64
}

pub(crate) fn new_client_id() -> String {
    window()
        .crypto()
        .map(|c| c.random_uuid())
        .unwrap_or_else(|_| format!("c{}-{}", now(), js_sys::Math::random()))
}

fn page_visible() -> bool {
    !document().hidden()
}

impl Chat {
    fn room(&self, id: &str) -> Option<Room> {
        self.rooms
            .with(|rs| rs.iter().find(|r| r.id == id).cloned())
    }

    fn room_untracked(&self, id: &str) -> Option<Room> {
        self.rooms
            .with_untracked(|rs| rs.iter().find(|r| r.id == id).cloned())
    }

    pub(crate) fn upsert_room(&self, room: Room) {
        self.rooms
            .update(|rs| match rs.iter_mut().find(|r| r.id == room.id) {
                Some(r) => *r = room,
                None => rs.push(room),
            });
    }

    async fn load_presence(self) {
        if let Ok(v) = api::get::<serde_json::Value>("/api/presence").await {
            let map = v["users"]
                .as_array()
                .map(|users| {
                    users
                        .iter()
                        .filter_map(|u| {
                            Some((
                                u["user"]["id"].as_str()?.to_string(),
                                u["status"].as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            self.presence.set(map);
        }
    }

    /// Idle after [`IDLE_AFTER_MS`] without input or while the tab is hidden; tells the server on
    /// a change.
    fn check_idle(self) {
        self.report_idle(false);
    }

    /// Tells the server this tab's status when it changed, or always when `always` (a new
    /// connection: the server may still hold what an earlier page said, e.g. the idle a page
    /// reported while it was being unloaded).
    fn report_idle(self, always: bool) {
        let idle = document().hidden() || now() - self.last_input.get_value() > IDLE_AFTER_MS;
        if idle == self.idle_sent.get_value() && !always {
            return;
        }
        self.idle_sent.set_value(idle);
        let status = if idle { "idle" } else { "online" };
        if !live::send(
            Feed::Chat,
            &ClientFrame::Presence {
                status: status.into(),
            },
        ) {
            leptos::task::spawn_local(async move {
                let _ = api::post::<_, serde::de::IgnoredAny>(
                    "/api/presence",
                    &serde_json::json!({ "status": status }),
                )
                .await;
            });
        }
    }

    /// My transport settings as the live client last received them.
    pub(crate) fn live_settings(&self) -> RwSignal<Option<TransportSettings>> {
        self.live.settings
    }

    /// Shows an error notice. It stays until its cause is gone: the user dismisses it, another
    /// room or page opens, the connection comes back, or a later action succeeds.
    pub(crate) fn notify(&self, text: impl Into<String>) {
        self.show_notice(text.into(), false);
    }

    /// Shows a success notice ("Invited bob."), which goes away by itself.
    pub(crate) fn notify_ok(&self, text: impl Into<String>) {
        let id = self.show_notice(text.into(), true);
        let notice = self.notice;
        set_timeout(
            move || {
                let _ = notice.try_update(|n| {
                    if n.as_ref().is_some_and(|n| n.id == id) {
                        *n = None;
                    }
                });
            },
            std::time::Duration::from_millis(NOTICE_OK_MS),
        );
    }

    fn show_notice(&self, text: String, ok: bool) -> u64 {
        let id = NOTICE_IDS.with(|n| {
            let id = n.get() + 1;
            n.set(id);
            id
        });
        self.notice.set(Some(Notice { id, text, ok }));
        id
    }

    /// Clears an error notice (its cause is gone); a success notice runs its course.
    fn clear_error_notice(&self) {
        if self
            .notice
            .with_untracked(|n| n.as_ref().is_some_and(|n| !n.ok))
        {
            self.notice.set(None);
        }
    }

    async fn load_rooms(self) {
        match api::get::<RoomList>("/api/rooms").await {
            Ok(list) => {
                self.rooms.set(list.rooms);
                self.rooms_loaded.set(true);
            }
            Err(e) => self.notify(e.message),
        }
    }

    /// Loads the newest page of a room (again, after a resync).
    async fn load_room(self, room_id: String) {
        match api::get::<MessageList>(&format!("/api/rooms/{room_id}/messages?limit={PAGE}")).await
        {
            Ok(list) => {
                let full = list.messages.len() as u32 == PAGE;
                // Sends of mine the server already has (their ack was lost to an outage or a
                // reload): shown once, from the page, and out of the outbox.
                let me = self.me_id();
                let arrived: Vec<String> = list
                    .messages
                    .iter()
                    .filter(|m| m.author.id == me)
                    .map(|m| m.client_id.clone())
                    .collect();
                self.logs.update(|logs| {
                    let log = logs.entry(room_id.clone()).or_default();
                    // What arrived live while the page was being fetched is newer than the
                    // page: it stays (after the page), as do sends not yet confirmed.
                    let newest = list.messages.last().map_or(0, |m| m.seq);
                    let live: Vec<UiMessage> = log
                        .msgs
                        .iter()
                        .filter(|m| m.state == SendState::Sent && m.msg.seq > newest)
                        .cloned()
                        .collect();
                    let pending: Vec<UiMessage> = log
                        .msgs
                        .iter()
                        .filter(|m| {
                            m.state != SendState::Sent && !arrived.contains(&m.msg.client_id)
                        })
                        .cloned()
                        .collect();
                    log.msgs = list
                        .messages
                        .into_iter()
                        .map(|msg| UiMessage {
                            msg,
                            state: SendState::Sent,
                        })
                        .collect();
                    log.msgs.extend(live);
                    log.msgs.extend(pending);
                    log.has_older = full;
                    log.loaded = true;
                });
                for client_id in &arrived {
                    self.forget_outgoing(client_id);
                }
                self.pump();
                self.mark_read(&room_id, true);
            }
            Err(e) if e.status == 403 || e.status == 404 => {
                self.logs.update(|logs| {
                    logs.entry(room_id.clone()).or_default().loaded = true;
                });
            }
            Err(e) => self.notify(e.message),
        }
    }

    async fn load_older(self, room_id: String) {
        let Some(first) = self.logs.with_untracked(|l| {
            l.get(&room_id).and_then(|log| {
                log.msgs
                    .iter()
                    .find(|m| m.state == SendState::Sent)
                    .map(|m| m.msg.id.clone())
            })
        }) else {
            return;
        };
        let url = format!("/api/rooms/{room_id}/messages?before={first}&limit={PAGE}");
        match api::get::<MessageList>(&url).await {
            Ok(list) => {
                let full = list.messages.len() as u32 == PAGE;
                self.logs.update(|logs| {
                    let log = logs.entry(room_id).or_default();
                    let mut older: Vec<UiMessage> = list
                        .messages
                        .into_iter()
                        .map(|msg| UiMessage {
                            msg,
                            state: SendState::Sent,
                        })
                        .collect();
                    older.append(&mut log.msgs);
                    log.msgs = older;
                    log.has_older = full;
                });
            }
            Err(e) => self.notify(e.message),
        }
    }

    /// Records that I have read a room up to its newest message. Opening a room always tells the
    /// server (which then reads the room's mentions and DMs in the bell too); a message arriving
    /// while I look only when there is something new to record.
    fn mark_read(&self, room_id: &str, opened: bool) {
        let Some(last) = self
            .logs
            .with_untracked(|l| l.get(room_id).and_then(|log| log.last_confirmed().cloned()))
        else {
            return;
        };
        let Some(room) = self.room_untracked(room_id) else {
            return;
        };
        if !room.is_member {
            return;
        }
        let had_unread = room.unread > 0;
        self.rooms.update(|rs| {
            if let Some(r) = rs.iter_mut().find(|r| r.id == room_id) {
                r.unread = 0;
            }
        });
        if !opened && !had_unread && last.author.id == self.me.with_value(|m| m.id.clone()) {
            return;
        }
        let url = format!("/api/rooms/{room_id}/read");
        let body = protocol::ReadPosition {
            message_id: last.id,
        };
        leptos::task::spawn_local(async move {
            let _ = api::post::<_, ()>(&url, &body).await;
        });
    }

    fn me_id(&self) -> String {
        self.me.with_value(|m| m.id.clone())
    }

    /// Whether the chat feed is live now (not tracked).
    fn chat_live(&self) -> bool {
        self.live.stats.with_untracked(|s| {
            s.get(&Feed::Chat)
                .is_some_and(|f| f.state == ConnState::Connected)
        })
    }

    /// How an unsent message shows: refused, on its way, or waiting for the connection.
    fn outgoing_state(&self, o: &outbox::Outgoing) -> SendState {
        match &o.refused {
            Some(reason) => SendState::Failed(reason.clone()),
            None if self.chat_live() => SendState::Pending,
            None => SendState::Queued,
        }
    }

    /// Shows an outbox entry at the end of its room (replacing an earlier copy). False when the
    /// room already has it confirmed: then it is not shown again.
    fn show_outgoing(&self, o: &outbox::Outgoing) -> bool {
        let me = self.me.get_value();
        let state = self.outgoing_state(o);
        let msg = Message {
            id: format!("pending:{}", o.client_id),
            room_id: o.room_id.clone(),
            author: protocol::Author {
                id: me.id.clone(),
                username: me.username.clone(),
            },
            body: o.body.clone(),
            client_id: o.client_id.clone(),
            created_at: o.created_at,
            seq: 0,
            event_id: 0,
        };
        let mut shown = false;
        self.logs.update(|logs| {
            let log = logs.entry(o.room_id.clone()).or_default();
            let confirmed = log.msgs.iter().any(|m| {
                m.state == SendState::Sent
                    && m.msg.client_id == o.client_id
                    && m.msg.author.id == me.id
            });
            if confirmed {
                return;
            }
            log.msgs
                .retain(|m| m.msg.client_id != o.client_id || m.state == SendState::Sent);
            log.msgs.push(UiMessage { msg, state });
            shown = true;
        });
        shown
    }

    /// The outbox as the last session left it, shown in its rooms (browser only).
    fn restore_outbox(self) {
        let me = self.me_id();
        let mut kept = Vec::new();
        for o in outbox::load(&me) {
            if self.show_outgoing(&o) {
                kept.push(o);
            } else {
                outbox::remove(&me, &o.client_id);
            }
        }
        self.outbox.set_value(kept);
    }

    /// Re-labels unsent messages after the chat feed came or went.
    fn refresh_outgoing(&self) {
        let live = self.chat_live();
        self.logs.update(|logs| {
            for m in logs.values_mut().flat_map(|l| l.msgs.iter_mut()) {
                if matches!(m.state, SendState::Pending | SendState::Queued) {
                    m.state = if live {
                        SendState::Pending
                    } else {
                        SendState::Queued
                    };
                }
            }
        });
    }

    fn set_outgoing_state(&self, client_id: &str, state: SendState) {
        self.logs.update(|l| {
            for log in l.values_mut() {
                log.set_state(client_id, state.clone());
            }
        });
    }

    /// Out of the outbox: the server has it, or the person discarded it.
    fn forget_outgoing(&self, client_id: &str) {
        let had = self
            .outbox
            .with_value(|q| q.iter().any(|o| o.client_id == client_id));
        if had {
            self.outbox
                .update_value(|q| q.retain(|o| o.client_id != client_id));
            outbox::remove(&self.me_id(), client_id);
        }
        if self
            .inflight
            .with_value(|f| f.as_ref().is_some_and(|(c, _)| c == client_id))
        {
            self.inflight.set_value(None);
        }
    }

    /// A message of mine the server confirmed: shown as sent, out of the outbox, next one goes.
    fn confirmed(self, msg: Message) {
        let client_id = msg.client_id.clone();
        self.logs.update(|l| {
            l.entry(msg.room_id.clone()).or_default().confirm(msg);
        });
        self.forget_outgoing(&client_id);
        self.pump();
    }

    /// Puts a message into the outbox (a retry keeps its client id) and sends what is due.
    fn send(self, room_id: String, body: String, retry_of: Option<String>) {
        let o = outbox::Outgoing {
            room_id,
            client_id: retry_of.unwrap_or_else(new_client_id),
            body,
            created_at: now() as i64,
            refused: None,
        };
        self.outbox.update_value(
            |q| match q.iter_mut().find(|x| x.client_id == o.client_id) {
                Some(x) => *x = o.clone(),
                None => q.push(o.clone()),
            },
        );
        outbox::put(&self.me_id(), &o);
        self.show_outgoing(&o);
        self.pump();
    }

    /// Discards a refused message: gone from the room and the outbox.
    fn discard(self, room_id: &str, client_id: &str) {
        self.forget_outgoing(client_id);
        self.logs.update(|l| {
            if let Some(log) = l.get_mut(room_id) {
                log.msgs
                    .retain(|m| m.state == SendState::Sent || m.msg.client_id != client_id);
            }
        });
        self.pump();
    }

    fn pump_later(self, ms: u64) {
        set_timeout(move || self.pump(), std::time::Duration::from_millis(ms));
    }

    /// Sends the oldest outbox entry that was not refused, when the chat feed is live and
    /// nothing else is on its way: one at a time, so messages arrive in the order written.
    /// Every answer calls it again.
    fn pump(self) {
        let Some(busy) = self.inflight.try_with_value(Option::is_some) else {
            return; // the chat screen is gone
        };
        if busy || !self.chat_live() {
            return;
        }
        let Some(o) = self
            .outbox
            .with_value(|q| q.iter().find(|o| o.refused.is_none()).cloned())
        else {
            return;
        };
        let attempt = self.attempts.get_value() + 1;
        self.attempts.set_value(attempt);
        self.inflight
            .set_value(Some((o.client_id.clone(), attempt)));
        self.set_outgoing_state(&o.client_id, SendState::Pending);
        let frame = ClientFrame::Send {
            room_id: o.room_id.clone(),
            body: o.body.clone(),
            client_id: o.client_id.clone(),
        };
        if live::send(Feed::Chat, &frame) {
            let key = (o.client_id, attempt);
            set_timeout(
                move || {
                    // No answer: back into line, and sent again (the server keeps it once).
                    if self.inflight.try_with_value(|f| f.as_ref() == Some(&key)) == Some(true) {
                        self.inflight.set_value(None);
                        self.pump();
                    }
                },
                std::time::Duration::from_millis(ACK_TIMEOUT_MS),
            );
        } else {
            // No live socket: the HTTP API is just as idempotent.
            let url = format!("/api/rooms/{}/messages", o.room_id);
            let req = protocol::SendMessage {
                body: o.body,
                client_id: o.client_id.clone(),
            };
            leptos::task::spawn_local(async move {
                match api::post::<_, Message>(&url, &req).await {
                    Ok(msg) => self.confirmed(msg),
                    Err(e) => self.send_failed(&o.client_id, e.status, &e.code),
                }
            });
        }
    }

    /// A send that failed: kept in line when trying again later may work, otherwise marked
    /// refused with a short reason (it then waits for Retry or Discard) and the next one goes.
    fn send_failed(self, client_id: &str, status: u16, code: &str) {
        let Some(was_inflight) = self
            .inflight
            .try_with_value(|f| f.as_ref().is_some_and(|(c, _)| c == client_id))
        else {
            return; // the chat screen is gone
        };
        if was_inflight {
            self.inflight.set_value(None);
        }
        // Signed out: the live client takes the person to sign in; it goes after that.
        if api::is_transient(status) || status == 401 {
            self.set_outgoing_state(client_id, SendState::Queued);
            self.pump_later(RETRY_SOON_MS);
            return;
        }
        let reason = refusal_words(status, code);
        let me = self.me_id();
        self.outbox.update_value(|q| {
            if let Some(o) = q.iter_mut().find(|o| o.client_id == client_id) {
                o.refused = Some(reason.clone());
                outbox::put(&me, o);
            }
        });
        self.set_outgoing_state(client_id, SendState::Failed(reason));
        self.pump();
    }

    /// Applies one live event.
    fn apply(self, ev: Event) {
        if ev.feed == Feed::Notifications && ev.kind == kind::READ {
            // Notifications read (here, in another tab, or by opening a room): the server's
            // unread counts of the rooms may have moved with them.
            leptos::task::spawn_local(self.load_rooms());
        }
        if self.activity.apply(&ev) {
            return;
        }
        match ev.kind.as_str() {
            kind::MESSAGE => {
                let Ok(msg) = serde_json::from_value::<Message>(ev.data) else {
                    return;
                };
                let mine = msg.author.id == self.me.with_value(|m| m.id.clone());
                let client_id = msg.client_id.clone();
                let room_id = msg.room_id.clone();
                let author = msg.author.username.clone();
                let mut is_new = false;
                let mut gap = false;
                self.logs.update(|l| {
                    if let Some(log) = l.get_mut(&room_id) {
                        // Seqs are gap-free per room: a jump means something was missed.
                        let settled = log.msgs.iter().all(|m| m.state == SendState::Sent);
                        gap = log.loaded
                            && settled
                            && log
                                .last_confirmed()
                                .is_some_and(|last| msg.seq > last.seq + 1);
                        is_new = log.confirm(msg);
                    } else {
                        is_new = true;
                    }
                });
                if gap {
                    self.live.gap(Feed::Chat);
                    leptos::task::spawn_local(self.load_room(room_id.clone()));
                }
                if mine {
                    // Mine, from any tab: out of the outbox, and the next one goes.
                    self.forget_outgoing(&client_id);
                    self.pump();
                }
                // Sending a message ends its author's typing notice.
                self.typing
                    .update(|t| t.retain(|x| !(x.room_id == room_id && x.username == author)));
                if is_new && !mine {
                    let viewing = self.current.get_untracked().as_deref() == Some(room_id.as_str())
                        && page_visible();
                    if viewing {
                        self.mark_read(&room_id, false);
                    } else {
                        self.rooms.update(|rs| {
                            if let Some(r) = rs.iter_mut().find(|r| r.id == room_id) {
                                r.unread += 1;
                            }
                        });
                    }
                }
            }
            kind::ACK => {
                if let Some(msg) = ev
                    .data
                    .get("message")
                    .cloned()
                    .and_then(|m| serde_json::from_value::<Message>(m).ok())
                {
                    self.confirmed(msg);
                }
            }
            kind::ERROR => {
                let message = ev
                    .data
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("Refused")
                    .to_string();
                let status = ev
                    .data
                    .get("status")
                    .and_then(|s| s.as_u64())
                    .unwrap_or(400) as u16;
                let code = ev
                    .data
                    .get("code")
                    .and_then(|c| c.as_str())
                    .unwrap_or_default();
                match ev.data.get("client_id").and_then(|c| c.as_str()) {
                    Some(cid) => self.send_failed(cid, status, code),
                    None => self.notify(message),
                }
            }
            kind::MEMBERSHIP => {
                let Some(room) = ev
                    .data
                    .get("room")
                    .cloned()
                    .and_then(|r| serde_json::from_value::<Room>(r).ok())
                else {
                    return;
                };
                let change = ev
                    .data
                    .get("change")
                    .and_then(|c| c.as_str())
                    .unwrap_or_default()
                    .to_string();
                let room_id = room.id.clone();
                if change == "left" && room.private {
                    self.rooms.update(|rs| rs.retain(|r| r.id != room_id));
                } else {
                    self.upsert_room(room);
                }
                if change == "joined"
                    && self.current.get_untracked().as_deref() == Some(room_id.as_str())
                {
                    leptos::task::spawn_local(self.load_room(room_id));
                }
            }
            kind::ROOM_CREATED => {
                // Someone's new public room. Mine (or one I already hold) stays as it is: this
                // payload is the room as a non-member sees it.
                if let Ok(room) = serde_json::from_value::<Room>(ev.data) {
                    if self.room_untracked(&room.id).is_none() {
                        self.upsert_room(room);
                    }
                }
            }
            kind::TYPING => {
                let room_id = ev
                    .data
                    .get("room_id")
                    .and_then(|r| r.as_str())
                    .unwrap_or_default()
                    .to_string();
                let username = ev
                    .data
                    .get("user")
                    .and_then(|u| u.get("username"))
                    .and_then(|u| u.as_str())
                    .unwrap_or_default()
                    .to_string();
                if username.is_empty() || username == self.me.with_value(|m| m.username.clone()) {
                    return;
                }
                self.typing.update(|t| {
                    t.retain(|x| !(x.room_id == room_id && x.username == username));
                    t.push(Typist {
                        room_id,
                        username,
                        until: now() + TYPING_SHOW_MS,
                    });
                });
            }
            kind::HELLO => {
                // Back in touch with the server: what failed for want of it is moot.
                self.clear_error_notice();
                // A new connection: say where this tab stands.
                self.report_idle(true);
                // First connection, or a reconnect: the cursor covers the gap, but the room list
                // (unread counts) is cheap to refresh and catches anything outside the feed.
                leptos::task::spawn_local(self.load_rooms());
                leptos::task::spawn_local(self.activity.load());
                leptos::task::spawn_local(self.load_presence());
                let carries_chat = ev
                    .data
                    .get("feeds")
                    .and_then(|f| f.as_array())
                    .is_some_and(|fs| fs.iter().any(|f| f.as_str() == Some(Feed::Chat.as_str())));
                if carries_chat {
                    // The chat feed is live again: what was on its way over the old connection
                    // goes again (same client id, kept once), then the rest in order.
                    self.inflight.set_value(None);
                    self.refresh_outgoing();
                    self.pump();
                }
                if let Some(room) = self.current.get_untracked() {
                    let loaded = self
                        .logs
                        .with_untracked(|l| l.get(&room).is_some_and(|r| r.loaded));
                    if !loaded {
                        leptos::task::spawn_local(self.load_room(room));
                    }
                }
            }
            kind::PRESENCE => {
                let id = ev
                    .data
                    .get("user")
                    .and_then(|u| u.get("id"))
                    .and_then(|i| i.as_str())
                    .map(str::to_string);
                let status = ev
                    .data
                    .get("status")
                    .and_then(|s| s.as_str())
                    .unwrap_or("offline")
                    .to_string();
                if let Some(id) = id {
                    self.presence.update(|p| {
                        if status == "offline" {
                            p.remove(&id);
                        } else {
                            p.insert(id, status);
                        }
                    });
                }
            }
            kind::RESYNC => {
                self.logs.update(|l| l.clear());
                for o in self.outbox.get_value() {
                    self.show_outgoing(&o);
                }
                leptos::task::spawn_local(self.load_rooms());
                if let Some(room) = self.current.get_untracked() {
                    leptos::task::spawn_local(self.load_room(room));
                }
            }
            _ => {}
        }
    }
}

/// Why the server refused a message for good, in a few words for people (never its raw text).
fn refusal_words(status: u16, code: &str) -> String {
    match (status, code) {
        (413, _) | (_, "too_large") => "Too long: messages are at most 4000 characters.",
        (_, "invalid_body") => "A message cannot be empty.",
        (403, _) => "You are not a member of this room any more.",
        (404, _) => "This room is gone, or no longer open to you.",
        _ => "The server did not accept this message.",
    }
    .into()
}

/// The room id in a path like `/rooms/{id}`.
fn room_in_path(path: &str) -> Option<String> {
    path.strip_prefix("/rooms/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

#[component]
pub fn ChatPage() -> impl IntoView {
    let Me(me) = expect_context::<Me>();
    // Rendered on the server with the room list and the open room's messages, so the page reads
    // before its wasm loads; the browser takes this state over and follows it live.
    let initial = Resource::new_blocking(
        || (),
        |_| {
            #[cfg(feature = "ssr")]
            let source = use_context::<http::request::Parts>().and_then(|p| {
                let user = p
                    .extensions
                    .get::<crate::SsrUser>()
                    .and_then(|u| u.0.clone())?;
                let data = p.extensions.get::<crate::SsrData>()?.clone();
                Some((user, data, room_in_path(p.uri.path())))
            });
            async move {
                #[cfg(feature = "ssr")]
                {
                    let Some((user, data, room_id)) = source else {
                        return crate::Initial::default();
                    };
                    let cursor = Some(data.0.cursor());
                    let rooms = data.0.rooms(user.clone()).await;
                    let messages = match &room_id {
                        Some(id) => data.0.messages(user, id.clone(), PAGE).await,
                        None => None,
                    };
                    crate::Initial {
                        cursor,
                        rooms: Some(rooms),
                        room_id,
                        messages,
                    }
                }
                #[cfg(not(feature = "ssr"))]
                {
                    crate::Initial::default()
                }
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let initial = initial.await;
                match me.await {
                    Some(user) => view! { <ChatApp user initial /> }.into_any(),
                    None => view! {
                        <main class="centered">
                            <div class="card">
                                <h1>"You are signed out."</h1>
                                <p><a href="/login">"Sign in"</a></p>
                            </div>
                        </main>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ChatApp(user: User, initial: crate::Initial) -> impl IntoView {
    let location = use_location();
    let current = Memo::new(move |_| room_in_path(&location.pathname.get()));
    let on_jobs = Memo::new(move |_| location.pathname.get() == "/jobs");
    let on_admin = Memo::new(move |_| location.pathname.get() == "/admin");
    let on_race = Memo::new(move |_| location.pathname.get() == "/race");
    let cursor = initial.cursor;
    let mut logs = HashMap::new();
    if let (Some(room_id), Some(messages)) = (initial.room_id, initial.messages) {
        logs.insert(
            room_id,
            RoomLog {
                has_older: messages.len() as u32 == PAGE,
                msgs: messages
                    .into_iter()
                    .map(|msg| UiMessage {
                        msg,
                        state: SendState::Sent,
                    })
                    .collect(),
                loaded: true,
            },
        );
    }
    let chat = Chat {
        me: StoredValue::new(user.clone()),
        rooms_loaded: RwSignal::new(initial.rooms.is_some()),
        rooms: RwSignal::new(initial.rooms.unwrap_or_default()),
        logs: RwSignal::new(logs),
        current,
        live: LiveUi::new(),
        typing: RwSignal::new(Vec::new()),
        notice: RwSignal::new(None),
        tz_offset: RwSignal::new(0),
        activity: crate::activity::Activity::new(),
        presence: RwSignal::new(HashMap::new()),
        last_input: StoredValue::new(0.0),
        idle_sent: StoredValue::new(false),
        outbox: StoredValue::new(Vec::new()),
        inflight: StoredValue::new(None),
        attempts: StoredValue::new(0),
    };
    provide_context(chat);

    // Browser only: effects do not run on the server.
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            chat.tz_offset.set(crate::time::browser_offset_minutes());
            chat.restore_outbox();
            live::start(&CHOOSABLE_FEEDS, cursor, chat.live, move |ev| {
                chat.apply(ev)
            });
            // Input in this tab keeps me online; the tab going hidden (or five quiet minutes)
            // makes me idle, and coming back is told at once, not at the next tick.
            chat.last_input.set_value(now());
            let seen = move || {
                chat.last_input.set_value(now());
                chat.check_idle();
            };
            let inputs = [
                window_event_listener(leptos::ev::keydown, move |_| seen()),
                window_event_listener(leptos::ev::pointerdown, move |_| seen()),
                window_event_listener(leptos::ev::pointermove, move |_| seen()),
                window_event_listener(leptos::ev::wheel, move |_| seen()),
                window_event_listener(leptos::ev::touchstart, move |_| seen()),
                window_event_listener(leptos::ev::focus, move |_| seen()),
                // Fired at the document; it bubbles to the window.
                window_event_listener(leptos::ev::visibilitychange, move |_| {
                    if !document().hidden() {
                        chat.last_input.set_value(now());
                    }
                    chat.check_idle();
                }),
            ];
            let typing = chat.typing;
            let clock = chat.activity.clock;
            let expiry = set_interval_with_handle(
                move || {
                    let t = now();
                    clock.set(t as i64);
                    chat.check_idle();
                    if typing.with_untracked(|v| v.iter().any(|x| x.until < t)) {
                        typing.update(|v| v.retain(|x| x.until >= t));
                    }
                },
                std::time::Duration::from_secs(1),
            );
            on_cleanup(move || {
                if let Ok(handle) = expiry {
                    handle.clear();
                }
                for handle in inputs {
                    handle.remove();
                }
                live::stop();
            });
        }
    });
    // Another room or page: an error about the last one no longer applies.
    Effect::new(move |_| {
        location.pathname.track();
        chat.clear_error_notice();
    });
    // Unsent messages say whether they are on their way or waiting for the connection; what
    // was on its way over a connection that went is sent again once one is back.
    let chat_live = Memo::new(move |_| {
        chat.live.stats.with(|s| {
            s.get(&Feed::Chat)
                .is_some_and(|f| f.state == ConnState::Connected)
        })
    });
    Effect::new(move |_| {
        if !chat_live.get() {
            chat.inflight.set_value(None);
        }
        chat.refresh_outgoing();
    });
    // Opening a room loads it (once) and marks it read.
    Effect::new(move |_| {
        if let Some(room) = current.get() {
            let loaded = chat
                .logs
                .with_untracked(|l| l.get(&room).is_some_and(|r| r.loaded));
            if loaded {
                chat.mark_read(&room, true);
            } else {
                leptos::task::spawn_local(chat.load_room(room));
            }
        }
    });

    let username = user.username.clone();
    let settings_open = RwSignal::new(false);
    let settings_opener = NodeRef::<leptos::html::Button>::new();
    let is_admin = user.is_admin;
    let sign_out = move |_| {
        leptos::task::spawn_local(async move {
            let _ = api::post_empty("/api/auth/logout").await;
            let _ = window().location().set_href("/login");
        });
    };

    view! {
        <Title text=move || {
            let unread = chat.activity.unread.get();
            if unread > 0 { format!("({unread}) Switchboard") } else { "Switchboard".to_string() }
        } />
        <div class="app" class:room-open=move || current.get().is_some() || on_jobs.get() || on_admin.get() || on_race.get()>
            <SkipLink />
            <header class="topbar">
                <a class="brand" href="/" on:click=nav_click("/".into())>"Switchboard"</a>
                <ConnectionBanner />
                <a class="jobs-link" href="/jobs" on:click=nav_click("/jobs".into()) data-testid="jobs-link">
                    "Jobs"
                    // The tray: how many run, and the newest one's progress.
                    {move || {
                        let (running, newest) = chat.activity.jobs.with(|j| {
                            let live: Vec<&protocol::Job> = j.iter().filter(|j| !j.is_finished()).collect();
                            (live.len(), live.first().map(|j| j.progress))
                        });
                        (running > 0).then(|| view! {
                            <span class="badge running">{running}<span class="sr-only">" running"</span></span>
                            <progress class="tray" max="1" value=newest.unwrap_or(0.0) aria-label="Newest running job"></progress>
                        })
                    }}
                </a>
                <a class="jobs-link race-link" href="/race" on:click=nav_click("/race".into()) data-testid="race-link"
                    title="One feed over all four transports, side by side">"Race"</a>
                {is_admin.then(|| view! {
                    <a class="jobs-link admin-link" href="/admin" on:click=nav_click("/admin".into()) data-testid="admin-link">"Admin"</a>
                })}
                <crate::activity::Bell />
                <span class="me" title="Signed in">
                    {username}
                    {user.is_admin.then(|| view! { <span class="tag">"admin"</span> })}
                </span>
                <button
                    class="link"
                    node_ref=settings_opener
                    on:click=move |_| settings_open.update(|o| *o = !*o)
                    aria-expanded=move || settings_open.get().to_string()
                    data-testid="open-settings"
                >
                    "Transports"
                </button>
                <button class="link" on:click=sign_out data-testid=testid::SIGN_OUT>"Sign out"</button>
            </header>
            <Notice />
            <TransportSettingsPanel open=settings_open opener=settings_opener />
            <div class="layout">
                <aside class="sidebar" aria-label="Rooms">
                    <RoomList />
                    <NewRoomForm />
                    <DmForm />
                </aside>
                <main class="room" id="main" tabindex="-1">
                    {move || match current.get() {
                        Some(id) => view! { <RoomView room_id=id /> }.into_any(),
                        None if on_jobs.get() => view! { <crate::activity::JobsPage /> }.into_any(),
                        None if on_race.get() => view! { <crate::race::RacePage /> }.into_any(),
                        None if on_admin.get() && is_admin => view! { <crate::admin::AdminPage /> }.into_any(),
                        None => view! {
                            <div class="empty">
                                <h1>"Welcome to Switchboard"</h1>
                                <p>"Pick a room on the left, create one, or message someone."</p>
                            </div>
                        }
                        .into_any(),
                    }}
                </main>
            </div>
            <crate::activity::Toasts />
        </div>
    }
}

pub(crate) fn state_text(state: &ConnState) -> String {
    match state {
        ConnState::Connecting => "connecting…".into(),
        ConnState::Connected => "live".into(),
        ConnState::Reconnecting {
            attempt,
            retry_in_ms,
        } => {
            format!(
                "reconnecting (attempt {attempt}, in {:.1} s)",
                *retry_in_ms as f64 / 1000.0
            )
        }
        ConnState::Offline => "offline, waiting for the network".into(),
        ConnState::Stopped(reason) => format!("stopped: {reason}"),
    }
}

pub(crate) fn state_class(state: &ConnState) -> &'static str {
    match state {
        ConnState::Connected => "ok",
        ConnState::Connecting | ConnState::Reconnecting { .. } => "warn",
        _ => "bad",
    }
}

fn feed_label(feed: Feed) -> &'static str {
    match feed {
        Feed::Chat => "Chat",
        Feed::Notifications => "Notifications",
        Feed::Jobs => "Jobs",
        Feed::Control => "Control",
    }
}

/// The chat feed's transport and its state, in the header.
#[component]
fn ConnectionBanner() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let stats = move || chat.live.feed(Feed::Chat);
    let text = move || match stats() {
        Some(s) if s.transport != s.preferred => format!(
            "Chat: {} — using {} for now · {}",
            s.preferred.label(),
            s.transport.label(),
            state_text(&s.state)
        ),
        Some(s) => format!("Chat: {} · {}", s.transport.label(), state_text(&s.state)),
        None => "Chat: connecting…".to_string(),
    };
    let class = move || format!("conn {}", stats().map_or("warn", |s| state_class(&s.state)));
    let transport = move || stats().map(|s| s.transport.as_str()).unwrap_or("websocket");
    view! {
        <span class=class role="status" aria-live="polite" data-testid=testid::CONNECTION data-transport=transport>
            <span class="dot" aria-hidden="true"></span>
            {text}
        </span>
    }
}

/// Chooses the transport of one feed: my choice, with what an admin forced or switched off.
#[component]
pub fn TransportPicker(
    feed: Feed,
    /// Without the inspector next to it (where the full readout is shown anyway).
    #[prop(optional)]
    bare: bool,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let settings = chat.live.settings;
    let chosen = move || {
        settings.with(|s| {
            s.as_ref().map(|s| match feed {
                Feed::Chat => s.chat,
                Feed::Notifications => s.notifications,
                _ => s.jobs,
            })
        })
    };
    let forced = move || settings.with(|s| s.as_ref().and_then(|s| s.overrides.get(feed)));
    // On a fallback for now (the preferred transport failed here): what is really in use.
    let for_now = move || {
        chat.live
            .feed(feed)
            .filter(|s| s.transport != s.preferred)
            .map(|s| s.transport)
    };
    let on_change = move |ev: leptos::ev::Event| {
        let Ok(t) = event_target_value(&ev).parse::<Transport>() else {
            return;
        };
        let body = serde_json::json!({ feed.as_str(): t });
        leptos::task::spawn_local(async move {
            match api::put::<_, TransportSettings>("/api/me/transports", &body).await {
                Ok(settings) => live::apply_settings(settings),
                Err(e) => chat.notify(e.message),
            }
        });
    };
    view! {
        <span class="picker">
            <select
                aria-label=format!("{} transport", feed_label(feed))
                on:change=on_change
                data-testid=format!("transport-{}", feed.as_str())
            >
                {Transport::ALL
                    .into_iter()
                    .map(|t| {
                        let off = move || settings.with(|s| s.as_ref().is_some_and(|s| !s.enabled.enabled(t)));
                        view! {
                            <option value=t.as_str() selected=move || chosen() == Some(t)>
                                {move || if off() { format!("{} (off)", t.label()) } else { t.label().to_string() }}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            {move || forced().map(|t| view! { <span class="tag" title="Set by an administrator">{format!("admin: {}", t.label())}</span> })}
            {move || for_now().map(|t| view! {
                <span class="tag for-now" title="The chosen transport failed here; it is tried again by itself" data-testid=format!("transport-{}-in-use", feed.as_str())>
                    {format!("using {} for now", t.label())}
                </span>
            })}
            {(!bare).then(|| view! { <Inspector feed /> })}
        </span>
    }
}

/// A latency sparkline: the last events' commit-to-screen latency, oldest on the left, scaled
/// to the largest shown (its value is in the title).
#[component]
pub fn Sparkline(
    values: Vec<f64>,
    #[prop(default = 120.0)] w: f64,
    #[prop(default = 28.0)] h: f64,
) -> impl IntoView {
    let max = values.iter().copied().fold(0.0f64, f64::max).max(1.0);
    let n = values.len();
    let step = if n > 1 {
        w / (live::SPARK_SAMPLES - 1) as f64
    } else {
        0.0
    };
    let x0 = w - step * n.saturating_sub(1) as f64;
    let points = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                x0 + i as f64 * step,
                h - 2.0 - (v / max) * (h - 4.0)
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let label = if n == 0 {
        "no live events yet".to_string()
    } else {
        format!(
            "last {}, up to {max:.1} ms",
            protocol::count(n as i64, "event", "events")
        )
    };
    let title = label.clone();
    view! {
        <svg class="spark" viewBox=format!("0 0 {w} {h}") width=w height=h role="img" aria-label=label>
            <title>{title}</title>
            <line x1="0" x2=w y1=h - 1.0 y2=h - 1.0 class="base" />
            {(n > 0).then(|| view! { <polyline points=points /> })}
        </svg>
    }
}

/// A latency for display: one decimal under 10 ms, "–" when there is none.
pub(crate) fn fmt_latency(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(ms) if ms < 10.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{ms:.0} ms"),
    }
}

/// The transport inspector of one feed: transport and state, latency sparkline, requests per
/// minute, bytes per event, empty-poll ratio, reconnects, and the integrity badge.
#[component]
pub fn FeedReadout(
    feed: Feed,
    /// Inside an inspector popover (test id `inspector-readout-…`, so pages that also show the
    /// full readout have one `readout-…`).
    #[prop(optional)]
    popover: bool,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let stats = move || chat.live.feed(feed);
    let testid = format!(
        "{}readout-{}",
        if popover { "inspector-" } else { "" },
        feed.as_str()
    );
    view! {
        <dl class="readout" data-testid=testid>
            {move || match stats() {
                None => view! { <dt>"state"</dt><dd>"starting…"</dd> }.into_any(),
                Some(s) => {
                    let faults = s.integrity_faults();
                    view! {
                        <dt>"via"</dt><dd class=format!("t-{}", s.transport.as_str())>{s.transport.label()}</dd>
                        <dt>"state"</dt><dd class=state_class(&s.state)>{state_text(&s.state)}</dd>
                        <dt>"latency"</dt>
                        <dd class="spark-cell" data-testid="latency">
                            <Sparkline values=s.latencies.clone() w=88.0 h=22.0 />
                            <span>{format!("p50 {}", fmt_latency(s.latency_p50()))}</span>
                        </dd>
                        <dt>"requests"</dt><dd data-testid="requests">{format!("{} ({:.0}/min)", s.requests, s.requests_per_min())}</dd>
                        <dt>"bytes / event"</dt><dd data-testid="bytes-per-event">{s.bytes_per_event().map_or("–".into(), |b| format!("{b:.0} B"))}</dd>
                        <dt>"empty answers"</dt><dd data-testid="empty">{match s.empty_ratio() {
                            Some(r) => format!("{} ({:.0}%)", s.empty, r * 100.0),
                            None => "– (pushed)".into(),
                        }}</dd>
                        <dt>"reconnects"</dt><dd data-testid="reconnects">{s.reconnects}</dd>
                        <dt>"events"</dt><dd data-testid="received">{s.received}</dd>
                        <dt>"last id"</dt><dd>{s.last_id.map_or("–".to_string(), |i| format!("#{i}"))}</dd>
                        <dt>"integrity"</dt>
                        <dd data-testid="integrity" class=if faults == 0 { "ok" } else { "bad" }>
                            {if faults == 0 { "✓ no gaps, no duplicates".to_string() } else { format!("⚠ {}, {}", protocol::count(s.gaps as i64, "gap", "gaps"), protocol::count(s.dup_shown as i64, "duplicate", "duplicates")) }}
                            <span class="visually-hidden" data-testid="gaps">{s.gaps}</span>
                        </dd>
                        <dt>"overlap dropped"</dt><dd data-testid="duplicates" title="Events that arrived twice while a switch had two connections open, dropped before the view">{s.duplicates}</dd>
                    }
                    .into_any()
                }
            }}
        </dl>
    }
}

/// Next to a feed's picker: its latency sparkline, p50 and integrity at a glance; opens the
/// full inspector.
#[component]
pub fn Inspector(feed: Feed) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let stats = move || chat.live.feed(feed);
    let details = NodeRef::<leptos::html::Details>::new();
    let summary = NodeRef::<leptos::html::Summary>::new();
    let is_open = move || {
        details
            .get_untracked()
            .is_some_and(|d| d.has_attribute("open"))
    };
    let close = move || {
        if let Some(d) = details.get_untracked() {
            let _ = d.remove_attribute("open");
        }
    };
    crate::dismiss::dismiss_on_escape_or_outside(
        is_open,
        close,
        move || {
            details
                .get_untracked()
                .map(web_sys::Element::from)
                .into_iter()
                .collect()
        },
        move || summary.get_untracked(),
    );
    // Escape inside closes this popover only, not the panel around it.
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" && is_open() {
            ev.stop_propagation();
            close();
            if let Some(s) = summary.get_untracked() {
                let _ = s.focus();
            }
        }
    };
    view! {
        <details class="inspector" node_ref=details on:keydown=on_keydown data-testid=format!("inspector-{}", feed.as_str())>
            <summary node_ref=summary title="How this feed's transport behaves">
                {move || stats().map(|s| view! {
                    <Sparkline values=s.latencies.clone() w=48.0 h=16.0 />
                    <span class="p50">{fmt_latency(s.latency_p50())}</span>
                    <span class=if s.integrity_faults() == 0 { "ok" } else { "bad" }>
                        {if s.integrity_faults() == 0 { "✓" } else { "⚠" }}
                    </span>
                })}
                <span class="visually-hidden">"Transport inspector"</span>
            </summary>
            <div class="inspector-body">
                <FeedReadout feed popover=true />
            </div>
        </details>
    }
}

/// Admins only: switch a transport off (or on) for everyone; clients move by themselves.
#[component]
pub fn GlobalSwitches() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let settings = chat.live.settings;
    let toggle = move |t: Transport, on: bool| {
        let body = serde_json::json!({ t.as_str(): on });
        leptos::task::spawn_local(async move {
            match api::put::<_, protocol::Switches>("/api/admin/transports", &body).await {
                // The switch's control event refreshes everyone's settings, mine included.
                Ok(_) => {}
                Err(e) => chat.notify(e.message),
            }
        });
    };
    view! {
        <fieldset class="switches" data-testid="global-switches">
            <legend>"For everyone (admin)"</legend>
            {Transport::ALL
                .into_iter()
                .map(|t| {
                    let on = move || settings.with(|s| s.as_ref().is_none_or(|s| s.enabled.enabled(t)));
                    view! {
                        <label class="check">
                            <input
                                type="checkbox"
                                prop:checked=on
                                on:change=move |ev| toggle(t, event_target_checked(&ev))
                                data-testid=format!("switch-{}", t.as_str())
                            />
                            <span class=format!("t-{}", t.as_str())>{t.label()}</span>
                        </label>
                    }
                })
                .collect_view()}
        </fieldset>
    }
}

/// Settings: every feed's transport picker and readout side by side, in a drawer over the right
/// of the page (the chat keeps its size). Escape, a press outside or × closes it; focus goes back
/// to the "Transports" button.
#[component]
fn TransportSettingsPanel(
    open: RwSignal<bool>,
    opener: NodeRef<leptos::html::Button>,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let panel = NodeRef::<leptos::html::Section>::new();
    let focus_opener = move || {
        if let Some(el) = opener.get_untracked() {
            let _ = el.focus();
        }
    };
    crate::dismiss::dismiss_on_escape_or_outside(
        move || open.get_untracked(),
        move || open.set(false),
        move || {
            [
                panel.get_untracked().map(web_sys::Element::from),
                opener.get_untracked().map(web_sys::Element::from),
            ]
            .into_iter()
            .flatten()
            .collect()
        },
        move || opener.get_untracked().map(web_sys::HtmlElement::from),
    );
    // Opened: focus moves into the drawer, so the keyboard is where the eyes are.
    Effect::new(move |_| {
        if let Some(el) = panel.get() {
            let _ = el.focus();
        }
    });
    let is_admin = chat.me.with_value(|m| m.is_admin);
    let sign_out_everywhere = move |_| {
        leptos::task::spawn_local(async move {
            let _ = api::post_empty("/api/auth/logout-everywhere").await;
            let _ = window().location().set_href("/login");
        });
    };
    view! {
        <Show when=move || open.get()>
            <section class="settings" role="dialog" aria-labelledby="settings-title" tabindex="-1" node_ref=panel data-testid="transport-settings">
                <div class="panel-head">
                    <h2 id="settings-title">"Live transports"</h2>
                    <button class="link" on:click=move |_| { open.set(false); focus_opener(); } aria-label="Close settings" data-testid=testid::CLOSE_SETTINGS>"×"</button>
                </div>
                <p class="muted">
                    "Each feed rides one transport. Switching is live: the new connection starts from the last event you saw, so nothing is lost or shown twice."
                </p>
                <p class="muted" data-testid="clock-offset">
                    {move || match chat.live.clock.get() {
                        Some(c) => format!("Latency is commit to screen, on the server's clock: this tab's clock is {:+.1} ms off (±{:.1} ms).", -c.offset_ms, c.rtt_ms / 2.0),
                        None => "Latency is commit to screen, once this tab has measured its clock offset.".to_string(),
                    }}
                </p>
                <div class="feeds">
                    {CHOOSABLE_FEEDS
                        .into_iter()
                        .map(|feed| view! {
                            <div class="feed">
                                <h3>{feed_label(feed)}</h3>
                                <TransportPicker feed bare=true />
                                <FeedReadout feed />
                            </div>
                        })
                        .collect_view()}
                </div>
                {is_admin.then(|| view! { <GlobalSwitches /> })}
                <div class="sessions">
                    <h3>"Sessions"</h3>
                    <p class="muted">"Signed in on another device you no longer use? This signs you out of every session, this one included, and closes their live connections."</p>
                    <button class="link" on:click=sign_out_everywhere data-testid=testid::SIGN_OUT_EVERYWHERE>
                        "Sign out everywhere"
                    </button>
                </div>
            </section>
        </Show>
    }
}

#[component]
fn Notice() -> impl IntoView {
    let chat = expect_context::<Chat>();
    view! {
        <Show when=move || chat.notice.with(Option::is_some)>
            <div
                class="notice"
                class:ok=move || chat.notice.with(|n| n.as_ref().is_some_and(|n| n.ok))
                role=move || if chat.notice.with(|n| n.as_ref().is_some_and(|n| n.ok)) { "status" } else { "alert" }
                data-testid=testid::NOTICE
            >
                <span>{move || chat.notice.with(|n| n.as_ref().map(|n| n.text.clone()).unwrap_or_default())}</span>
                <button class="link" on:click=move |_| chat.notice.set(None) aria-label="Dismiss">"×"</button>
            </div>
        </Show>
    }
}

#[component]
fn RoomList() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let section = move |filter: fn(&Room) -> bool| {
        move || {
            chat.rooms
                .get()
                .into_iter()
                .filter(filter)
                .map(|room| view! { <RoomLink room /> })
                .collect_view()
        }
    };
    view! {
        <nav data-testid=testid::ROOM_LIST>
            <h3>"Rooms"</h3>
            <ul class="rooms">{section(|r| r.is_member && r.dm_with.is_none())}</ul>
            <h3>"Direct messages"</h3>
            <ul class="rooms">{section(|r| r.is_member && r.dm_with.is_some())}</ul>
            <h3>"Other rooms"</h3>
            <ul class="rooms">{section(|r| !r.is_member)}</ul>
            <Show when=move || !chat.rooms_loaded.get()>
                <p class="muted">"Loading rooms…"</p>
            </Show>
        </nav>
    }
}

/// A click handler for in-app links: navigates through the router (a plain click on the link
/// alone updated the view but left the address bar behind). Modified clicks open as usual.
fn nav_click(target: String) -> impl FnMut(leptos::ev::MouseEvent) + 'static {
    let navigate = use_navigate();
    move |ev: leptos::ev::MouseEvent| {
        if ev.button() == 0 && !(ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.alt_key()) {
            ev.prevent_default();
            navigate(&target, Default::default());
        }
    }
}

/// The first thing Tab reaches: straight to the composer (or the page's content when there is
/// none), past the header and the room list.
#[component]
fn SkipLink() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let label = move || {
        if chat.current.get().is_some() {
            "Skip to composer"
        } else {
            "Skip to content"
        }
    };
    let on_click = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        let target = document()
            .get_element_by_id("composer")
            .or_else(|| document().get_element_by_id("main"));
        if let Some(el) =
            target.and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok())
        {
            let _ = el.focus();
        }
    };
    view! {
        <a class="skip-link" href=move || if chat.current.get().is_some() { "#composer" } else { "#main" } on:click=on_click data-testid=testid::SKIP_LINK>{label}</a>
    }
}

/// A dot with its text equivalent: online, idle or offline.
#[component]
fn PresenceDot(user_id: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let status = Memo::new(move |_| {
        chat.presence
            .with(|p| p.get(&user_id).cloned())
            .unwrap_or_else(|| "offline".into())
    });
    view! {
        <span class=move || format!("presence {}", status.get()) title=move || status.get() data-testid="presence">
            <span class="sr-only">{move || status.get()}</span>
        </span>
    }
}

fn room_label(room: &Room) -> String {
    match &room.dm_with {
        Some(other) => format!("@{}", other.username),
        None => format!("# {}", room.name),
    }
}

#[component]
fn RoomLink(room: Room) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let id = room.id.clone();
    let active = Memo::new(move |_| chat.current.get().as_deref() == Some(id.as_str()));
    let unread = room.unread;
    let label = room_label(&room);
    let hint = if room.is_member {
        ""
    } else if room.private {
        "invited"
    } else {
        "join"
    };
    let href = format!("/rooms/{}", room.id);
    let on_click = nav_click(href.clone());
    view! {
        <li>
            <a
                href=href
                on:click=on_click
                class:active=move || active.get()
                class:unread={unread > 0}
                aria-current=move || if active.get() { Some("page") } else { None }
            >
                {room.dm_with.clone().map(|u| view! { <PresenceDot user_id=u.id /> })}
                <span class="name">{label}</span>
                {(room.private && room.dm_with.is_none()).then(|| view! { <span class="tag" title="Private">"private"</span> })}
                {(!hint.is_empty()).then(|| view! { <span class="tag">{hint}</span> })}
                {(unread > 0).then(|| view! {
                    <span class="badge">{unread}<span class="sr-only">" unread"</span></span>
                })}
            </a>
        </li>
    }
}

/// A one-field form's error: said under the field (which points to it with
/// `aria-describedby`), and the focus moves to the field.
#[derive(Clone, Copy)]
struct FieldError {
    text: RwSignal<Option<String>>,
    input: NodeRef<leptos::html::Input>,
}

impl FieldError {
    fn new() -> Self {
        FieldError {
            text: RwSignal::new(None),
            input: NodeRef::new(),
        }
    }

    fn show(self, text: impl Into<String>) {
        self.text.set(Some(text.into()));
        request_animation_frame(move || {
            if let Some(i) = self.input.get_untracked() {
                let _ = i.focus();
            }
        });
    }

    fn clear(self) {
        self.text.set(None);
    }

    fn is_shown(self) -> bool {
        self.text.with(Option::is_some)
    }
}

#[component]
fn NewRoomForm() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let name = RwSignal::new(String::new());
    let private = RwSignal::new(false);
    // What is wrong with the name, said under the field (which gets the focus).
    let error = FieldError::new();
    let navigate = use_navigate();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = CreateRoom {
            name: name.get_untracked(),
            private: private.get_untracked(),
        };
        if body.name.trim().is_empty() {
            error.show("A room needs a name.");
            return;
        }
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::post::<_, Room>("/api/rooms", &body).await {
                Ok(room) => {
                    // The next room starts from the defaults again: public, no name.
                    name.set(String::new());
                    private.set(false);
                    error.clear();
                    let id = room.id.clone();
                    chat.upsert_room(room);
                    navigate(&format!("/rooms/{id}"), Default::default());
                }
                Err(e) => error.show(e.message),
            }
        });
    };
    view! {
        <form class="side-form" on:submit=on_submit>
            <label for="new-room">"New room"</label>
            <div class="row">
                <input
                    id="new-room"
                    type="text"
                    placeholder="Room name"
                    maxlength="80"
                    prop:value=move || name.get()
                    on:input=move |ev| {
                        name.set(event_target_value(&ev));
                        error.clear();
                    }
                    aria-invalid=move || error.is_shown().then_some("true")
                    aria-describedby=move || error.is_shown().then_some("new-room-error")
                    node_ref=error.input
                    data-testid=testid::NEW_ROOM_NAME
                />
                <button type="submit" data-testid=testid::NEW_ROOM_SUBMIT>"Create"</button>
            </div>
            <p
                id="new-room-error"
                class="field-error"
                data-testid=testid::NEW_ROOM_ERROR
                hidden=move || !error.is_shown()
            >
                {move || error.text.get().unwrap_or_default()}
            </p>
            <label class="check">
                <input
                    type="checkbox"
                    prop:checked=move || private.get()
                    on:change=move |ev| private.set(event_target_checked(&ev))
                    data-testid=testid::NEW_ROOM_PRIVATE
                />
                "Private (invite only)"
            </label>
        </form>
    }
}

#[component]
fn DmForm() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let who = RwSignal::new(String::new());
    let error = FieldError::new();
    let navigate = use_navigate();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = UsernameBody {
            username: who.get_untracked(),
        };
        if body.username.trim().is_empty() {
            error.show("Enter a username.");
            return;
        }
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::post::<_, Room>("/api/dms", &body).await {
                Ok(room) => {
                    who.set(String::new());
                    error.clear();
                    let id = room.id.clone();
                    chat.upsert_room(room);
                    navigate(&format!("/rooms/{id}"), Default::default());
                }
                Err(e) => error.show(e.message),
            }
        });
    };
    view! {
        <form class="side-form" on:submit=on_submit>
            <label for="dm-user">"Message someone"</label>
            <div class="row">
                <input
                    id="dm-user"
                    type="text"
                    placeholder="Username"
                    autocapitalize="none"
                    prop:value=move || who.get()
                    on:input=move |ev| {
                        who.set(event_target_value(&ev));
                        error.clear();
                    }
                    aria-invalid=move || error.is_shown().then_some("true")
                    aria-describedby=move || error.is_shown().then_some("dm-error")
                    node_ref=error.input
                    data-testid=testid::DM_USERNAME
                />
                <button type="submit" data-testid=testid::DM_SUBMIT>"Open"</button>
            </div>
            <p id="dm-error" class="field-error" data-testid=testid::DM_ERROR hidden=move || !error.is_shown()>
                {move || error.text.get().unwrap_or_default()}
            </p>
        </form>
    }
}

#[component]
fn RoomView(room_id: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let rid = StoredValue::new(room_id);
    let room = Memo::new(move |_| chat.room(&rid.get_value()));
    let is_member = move || room.get().is_some_and(|r| r.is_member);
    let navigate = use_navigate();

    let join = move |_| {
        let id = rid.get_value();
        leptos::task::spawn_local(async move {
            if let Err(e) = api::post_empty(&format!("/api/rooms/{id}/join")).await {
                chat.notify(e.message);
            }
        });
    };
    let leave_now = move || {
        let id = rid.get_value();
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::post_empty(&format!("/api/rooms/{id}/leave")).await {
                Ok(()) => navigate("/", Default::default()),
                Err(e) => chat.notify(e.message),
            }
        });
    };
    // Leaving a private room asks first: coming back takes a new invite.
    let confirming = RwSignal::new(false);
    let leave_button = NodeRef::<leptos::html::Button>::new();
    let stay_button = NodeRef::<leptos::html::Button>::new();
    let leave = {
        let leave_now = leave_now.clone();
        move |_| {
            if room
                .get_untracked()
                .is_some_and(|r| r.private && r.dm_with.is_none())
            {
                confirming.set(true);
                request_animation_frame(move || {
                    if let Some(b) = stay_button.get_untracked() {
                        let _ = b.focus();
                    }
                });
            } else {
                leave_now();
            }
        }
    };
    let stay = move || {
        confirming.set(false);
        request_animation_frame(move || {
            if let Some(b) = leave_button.get_untracked() {
                let _ = b.focus();
            }
        });
    };
    let export = {
        let navigate = use_navigate();
        move |_| {
            let body = serde_json::json!({ "kind": "export_room", "room_id": rid.get_value() });
            let navigate = navigate.clone();
            leptos::task::spawn_local(async move {
                match api::post::<_, protocol::Job>("/api/jobs", &body).await {
                    Ok(job) => {
                        chat.activity.upsert_job(job);
                        navigate("/jobs", Default::default());
                    }
                    Err(e) => chat.notify(e.message),
                }
            });
        }
    };
    let invitee = RwSignal::new(String::new());
    let invite_error = FieldError::new();
    let invite = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = UsernameBody {
            username: invitee.get_untracked(),
        };
        if body.username.trim().is_empty() {
            invite_error.show("Enter the username to invite.");
            return;
        }
        let id = rid.get_value();
        leptos::task::spawn_local(async move {
            match api::post::<_, ()>(&format!("/api/rooms/{id}/invite"), &body).await {
                Ok(()) => {
                    chat.notify_ok(format!("Invited {}.", body.username.trim()));
                    invitee.set(String::new());
                    invite_error.clear();
                }
                Err(e) => invite_error.show(e.message),
            }
        });
    };
    let title = move || {
        room.get()
            .map(|r| room_label(&r))
            .unwrap_or_else(|| "Room".into())
    };
    let is_dm = move || room.get().is_some_and(|r| r.dm_with.is_some());

    view! {
        <section class="room-view" aria-labelledby="room-title">
            <header class="room-head">
                <a class="back" href="/" on:click=nav_click("/".into()) aria-label="Back to rooms">"←"</a>
                <h1 id="room-title" data-testid=testid::ROOM_TITLE>{title}</h1>
                {move || room.get().filter(|r| r.private && r.dm_with.is_none()).map(|_| view! { <span class="tag">"private"</span> })}
                <div class="room-actions">
                    <span class="via">"via " <TransportPicker feed=Feed::Chat /></span>
                    <Show when=move || is_member() && !is_dm()>
                        <form class="inline" on:submit=invite>
                            <input
                                type="text"
                                placeholder="Invite username"
                                aria-label="Username to invite"
                                autocapitalize="none"
                                prop:value=move || invitee.get()
                                on:input=move |ev| {
                                    invitee.set(event_target_value(&ev));
                                    invite_error.clear();
                                }
                                aria-invalid=move || invite_error.is_shown().then_some("true")
                                aria-describedby=move || invite_error.is_shown().then_some("invite-error")
                                node_ref=invite_error.input
                                data-testid=testid::INVITE_USERNAME
                            />
                            <button type="submit" data-testid=testid::INVITE_SUBMIT>"Invite"</button>
                        </form>
                    </Show>
                    <Show when=is_member>
                        <button class="link" on:click=export.clone() data-testid="export-room">"Export"</button>
                        <button class="link" on:click=leave.clone() node_ref=leave_button aria-expanded=move || confirming.get().to_string() data-testid=testid::LEAVE_ROOM>"Leave"</button>
                    </Show>
                </div>
            </header>
            <p
                id="invite-error"
                class="field-error bar-error"
                data-testid=testid::INVITE_ERROR
                hidden=move || !invite_error.is_shown()
            >
                {move || invite_error.text.get().unwrap_or_default()}
            </p>
            <Show when=move || confirming.get()>
                <div
                    class="confirm-bar"
                    role="alertdialog"
                    aria-labelledby="leave-confirm-text"
                    data-testid=testid::LEAVE_CONFIRM
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if ev.key() == "Escape" {
                            stay();
                        }
                    }
                >
                    <p id="leave-confirm-text">
                        {move || format!("Leave #{}? It is private: you will need a new invite to come back.", room.get().map(|r| r.name).unwrap_or_default())}
                    </p>
                    <button class="danger" on:click={
                        let leave_now = leave_now.clone();
                        move |_| {
                            confirming.set(false);
                            leave_now();
                        }
                    } data-testid=testid::LEAVE_CONFIRM_YES>"Leave room"</button>
                    <button on:click=move |_| stay() node_ref=stay_button data-testid=testid::LEAVE_CONFIRM_NO>"Stay"</button>
                </div>
            </Show>
            <MessageList room_id=rid.get_value() />
            <TypingLine room_id=rid.get_value() />
            <Show
                when=is_member
                fallback=move || view! {
                    <div class="join-bar">
                        <p>"You are not a member of this room."</p>
                        <button class="primary" on:click=join data-testid=testid::JOIN_ROOM>"Join room"</button>
                    </div>
                }
            >
                <Composer room_id=rid.get_value() />
            </Show>
        </section>
    }
}

/// One row of the message list.
#[derive(Clone, PartialEq)]
enum Row {
    Day(String),
    Msg(UiMessage, bool),
}

impl Row {
    fn key(&self) -> String {
        match self {
            Row::Day(d) => format!("day:{d}"),
            Row::Msg(m, header) => {
                let state = match &m.state {
                    SendState::Sent => "s".to_string(),
                    SendState::Pending => "p".to_string(),
                    SendState::Queued => "q".to_string(),
                    SendState::Failed(e) => format!("f{e}"),
                };
                format!("{}:{}:{}:{}", m.msg.client_id, m.msg.id, state, header)
            }
        }
    }
}

fn rows(msgs: &[UiMessage], tz_offset: i32) -> Vec<Row> {
    let now = crate::time::now_ms();
    let mut out = Vec::with_capacity(msgs.len() + 4);
    let mut last_day = String::new();
    let mut prev: Option<&UiMessage> = None;
    for m in msgs {
        let day = crate::time::day_label(m.msg.created_at, now, tz_offset);
        let new_day = day != last_day;
        if new_day {
            out.push(Row::Day(day.clone()));
            last_day = day;
        }
        let header = new_day
            || prev.is_none_or(|p| {
                p.msg.author.id != m.msg.author.id
                    || m.msg.created_at - p.msg.created_at > GROUP_GAP_MS
            });
        out.push(Row::Msg(m.clone(), header));
        prev = Some(m);
    }
    out
}

#[component]
fn MessageList(room_id: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let rid = StoredValue::new(room_id);
    let list_ref = NodeRef::<leptos::html::Div>::new();
    let at_bottom = StoredValue::new(true);
    let log = Memo::new(move |_| {
        chat.logs
            .with(|l| l.get(&rid.get_value()).cloned().unwrap_or_default())
    });
    let me_id = chat.me.with_value(|m| m.id.clone());

    // Follow new messages while the reader is at the bottom; leave them alone when scrolled up.
    Effect::new(move |_| {
        log.track();
        if at_bottom.get_value() {
            request_animation_frame(move || {
                if let Some(el) = list_ref.get_untracked() {
                    el.set_scroll_top(el.scroll_height());
                }
            });
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = list_ref.get_untracked() {
            at_bottom.set_value(el.scroll_height() - el.scroll_top() - el.client_height() < 80);
        }
    };
    let load_older = move |_| {
        let before = list_ref
            .get_untracked()
            .map(|el| el.scroll_height())
            .unwrap_or(0);
        let id = rid.get_value();
        leptos::task::spawn_local(async move {
            chat.load_older(id).await;
            // Keep the reader's place: shift by what was added above.
            request_animation_frame(move || {
                if let Some(el) = list_ref.get_untracked() {
                    el.set_scroll_top(el.scroll_top() + el.scroll_height() - before);
                }
            });
        });
    };

    view! {
        <div class="messages" node_ref=list_ref on:scroll=on_scroll data-testid=testid::MESSAGES>
            <Show when=move || log.with(|l| l.has_older)>
                <button class="load-older" on:click=load_older data-testid=testid::LOAD_OLDER>"Load older messages"</button>
            </Show>
            <Show when=move || log.with(|l| l.loaded && l.msgs.is_empty())>
                <p class="muted center">"No messages yet. Say hello!"</p>
            </Show>
            <Show when=move || !log.with(|l| l.loaded)>
                <p class="muted center">"Loading messages…"</p>
            </Show>
            <ol class="log" aria-live="polite" aria-relevant="additions" aria-label="Messages">
                <For each=move || log.with(|l| rows(&l.msgs, chat.tz_offset.get())) key=Row::key let:row>
                    {
                        let me_id = me_id.clone();
                        match row {
                            Row::Day(d) => view! { <li class="day"><span>{d}</span></li> }.into_any(),
                            Row::Msg(m, header) => view! { <MessageRow m header mine=m_is_mine(&me_id) /> }.into_any(),
                        }
                    }
                </For>
            </ol>
        </div>
    }
}

fn m_is_mine(me_id: &str) -> String {
    me_id.to_string()
}

#[component]
fn MessageRow(m: UiMessage, header: bool, mine: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let is_mine = m.msg.author.id == mine;
    let me_name = chat.me.with_value(|u| u.username.clone());
    let mentions_me = !is_mine && protocol::mentions(&m.msg.body).contains(&me_name);
    let created_at = m.msg.created_at;
    let (state_class, failed) = match &m.state {
        SendState::Sent => ("", None),
        SendState::Pending => ("pending", None),
        SendState::Queued => ("pending queued", None),
        SendState::Failed(e) => ("failed", Some(e.clone())),
    };
    let retry = {
        let (room_id, body, client_id) = (
            m.msg.room_id.clone(),
            m.msg.body.clone(),
            m.msg.client_id.clone(),
        );
        move |_| chat.send(room_id.clone(), body.clone(), Some(client_id.clone()))
    };
    let discard = {
        let (room_id, client_id) = (m.msg.room_id.clone(), m.msg.client_id.clone());
        move |_| chat.discard(&room_id, &client_id)
    };
    view! {
        <li class=format!("msg {state_class}") class:mine=is_mine class:mentions-me=mentions_me class:grouped=!header data-testid=testid::MESSAGE data-seq=m.msg.seq>
            {header.then(|| view! {
                <div class="meta">
                    <PresenceDot user_id=m.msg.author.id.clone() />
                    <span class="author">{m.msg.author.username.clone()}</span>
                    <time datetime=crate::time::iso(m.msg.created_at)>
                        {move || crate::time::clock(created_at, chat.tz_offset.get())}
                    </time>
                </div>
            })}
            <div class="body" data-testid=testid::MESSAGE_BODY>{m.msg.body.clone()}</div>
            {(m.state == SendState::Pending).then(|| view! { <span class="status" data-testid=testid::SEND_STATUS>"Sending…"</span> })}
            {(m.state == SendState::Queued).then(|| view! { <span class="status queued" data-testid=testid::SEND_STATUS>"Waiting for connection…"</span> })}
            {failed.map(|e| view! {
                <span class="status error" data-testid=testid::SEND_STATUS>
                    "Not sent: " {e} " "
                    <button class="link" on:click=retry data-testid=testid::SEND_RETRY>"Retry"</button>
                    " "
                    <button class="link" on:click=discard data-testid=testid::SEND_DISCARD>"Discard"</button>
                </span>
            })}
        </li>
    }
}

#[component]
fn TypingLine(room_id: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let text = move || {
        let names: Vec<String> = chat.typing.with(|t| {
            t.iter()
                .filter(|x| x.room_id == room_id)
                .map(|x| x.username.clone())
                .collect()
        });
        match names.len() {
            0 => String::new(),
            1 => format!("{} is typing…", names[0]),
            2 => format!("{} and {} are typing…", names[0], names[1]),
            _ => "Several people are typing…".to_string(),
        }
    };
    view! { <div class="typing" aria-live="polite" data-testid=testid::TYPING>{text}</div> }
}

#[component]
fn Composer(room_id: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let rid = StoredValue::new(room_id);
    let me_id = StoredValue::new(chat.me_id());
    let text = RwSignal::new(String::new());
    let last_typing = StoredValue::new(0.0f64);
    // Browser only: what was typed here before a reload comes back.
    Effect::new(move |_| {
        if let Some(draft) = outbox::draft(&me_id.get_value(), &rid.get_value()) {
            if text.get_untracked().is_empty() {
                text.set(draft);
            }
        }
    });
    let submit = move || {
        let body = text.get_untracked();
        if body.trim().is_empty() {
            return;
        }
        if body.trim().chars().count() > protocol::MAX_BODY_CHARS {
            chat.notify("Messages are at most 4000 characters.");
            return;
        }
        text.set(String::new());
        outbox::set_draft(&me_id.get_value(), &rid.get_value(), "");
        last_typing.set_value(0.0);
        chat.send(rid.get_value(), body, None);
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            submit();
        }
    };
    let on_input = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        outbox::set_draft(&me_id.get_value(), &rid.get_value(), &value);
        text.set(value);
        let t = now();
        // Offline, nobody would see the notice.
        if chat.chat_live() && t - last_typing.get_value() > TYPING_SEND_EVERY_MS {
            last_typing.set_value(t);
            let room_id = rid.get_value();
            if !live::send(
                Feed::Chat,
                &ClientFrame::Typing {
                    room_id: room_id.clone(),
                },
            ) {
                leptos::task::spawn_local(async move {
                    let _ = api::post_empty(&format!("/api/rooms/{room_id}/typing")).await;
                });
            }
        }
    };
    let over = move || text.with(|t| t.trim().chars().count() > protocol::MAX_BODY_CHARS);
    let offline = move || {
        chat.live.feed(Feed::Chat).is_some_and(|s| {
            matches!(
                s.state,
                ConnState::Reconnecting { .. } | ConnState::Offline | ConnState::Stopped(_)
            )
        })
    };
    view! {
        <Show when=offline>
            <p class="composer-offline" role="status" data-testid=testid::COMPOSER_OFFLINE>
                <span class="dot" aria-hidden="true"></span>
                "You are offline. Messages you send now wait here and go out by themselves when the connection is back."
            </p>
        </Show>
        <form class="composer" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); submit(); }>
            <textarea
                id="composer"
                rows="2"
                placeholder="Write a message… (Enter sends, Shift+Enter for a new line)"
                aria-label="Message"
                prop:value=move || text.get()
                on:input=on_input
                on:keydown=on_keydown
                data-testid=testid::COMPOSER
            ></textarea>
            <button type="submit" class="primary" disabled=over data-testid=testid::SEND>"Send"</button>
        </form>
    }
}
