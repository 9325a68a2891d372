//! The chat screen's state: one [`Chat`] of signals fed by the REST API (initial loads,
//! history) and the live feed (new messages, acks, membership changes, typing, presence), the
//! outbox of unsent messages, and the reducer that applies each live event.

use crate::live::{self, ConnState, Delivery, LiveUi};
use crate::state::activity::Activity;
use crate::state::reply::{Replying, ThreadState};
use crate::state::Initial;
use crate::{api, outbox};
use leptos::prelude::*;
use protocol::{
    Author, ClientFrame, EventData, Feed, Member, MemberList, Membership, MembershipChange,
    Message, MessageList, Presence, PresenceStatus, Room, RoomList, TransportSettings, TypedEvent,
    Typing, User, CHOOSABLE_FEEDS,
};
use std::collections::HashMap;

/// No input for this long (or a hidden tab) shows me as idle.
const IDLE_AFTER_MS: f64 = 5.0 * 60.0 * 1000.0;
/// How long a typing notice shows without a refresh.
const TYPING_SHOW_MS: f64 = 6_000.0;
/// A send with no ack by then goes back into line and is sent again (same client id: the server
/// keeps it once).
const ACK_TIMEOUT_MS: u64 = 15_000;
/// After a transient failure (network, 5xx, 429) the outbox is tried again this much later, or
/// as soon as the chat feed is live again.
const RETRY_SOON_MS: u64 = 3_000;
/// History page size for "load older".
pub(crate) const PAGE: u32 = 50;

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

/// "bob joined" / "bob left": a line in the timeline, placed by its event id among the
/// messages (each message carries the id of the event that published it).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberLine {
    pub event_id: i64,
    pub user: Author,
    pub change: MembershipChange,
}

/// Pages of history the browser loads at most to reach a message opened from search (the
/// history route's `around=` could start a window anywhere, but the room's log is one unbroken
/// run from the newest message back; this keeps it so).
pub const JUMP_PAGES: usize = 40;

impl RoomLog {
    /// Joins and leaves a page of history carried: each once (a live event may have brought it
    /// already), in event order.
    pub fn add_lines(&mut self, changes: Vec<protocol::MemberChange>) {
        if changes.is_empty() {
            return;
        }
        for c in changes {
            if !self.lines.iter().any(|l| l.event_id == c.event_id) {
                self.lines.push(MemberLine {
                    event_id: c.event_id,
                    user: c.user,
                    change: c.change,
                });
            }
        }
        self.lines.sort_by_key(|l| l.event_id);
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomLog {
    /// Confirmed messages in seq order, then pending or failed sends.
    pub msgs: Vec<UiMessage>,
    /// Joins and leaves, from the pages of history loaded and live, oldest first.
    pub lines: Vec<MemberLine>,
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

    /// The seq of the newest confirmed message (0 when there is none).
    pub(crate) fn last_confirmed_seq(&self) -> i64 {
        self.last_confirmed().map_or(0, |m| m.seq)
    }

    pub(crate) fn last_confirmed(&self) -> Option<&Message> {
        self.msgs
            .iter()
            .rev()
            .find(|m| m.state == SendState::Sent)
            .map(|m| &m.msg)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Typist {
    pub(crate) room_id: String,
    pub(crate) user_id: String,
    pub(crate) username: String,
    /// The name to show: their display name where set.
    pub(crate) name: String,
    until: f64,
}

/// How long a success notice shows.
const NOTICE_OK_MS: u64 = 4_000;

thread_local! {
    static NOTICE_IDS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The line under the header: an error until its cause is gone, or a passing success.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Notice {
    id: u64,
    pub(crate) text: String,
    pub(crate) ok: bool,
}

/// The chat screen's state, shared through context. All fields are signals (Copy).
#[derive(Clone, Copy)]
pub struct Chat {
    pub(crate) me: StoredValue<User>,
    pub(crate) rooms: RwSignal<Vec<Room>>,
    pub(crate) logs: RwSignal<HashMap<String, RoomLog>>,
    /// The room on screen, if any (read from the address).
    pub(crate) current: Memo<Option<String>>,
    pub(crate) live: LiveUi,
    pub(crate) typing: RwSignal<Vec<Typist>>,
    pub(crate) notice: RwSignal<Option<Notice>>,
    pub(crate) rooms_loaded: RwSignal<bool>,
    /// Minutes from UTC for displayed times: 0 (UTC) as rendered on the server, the browser's
    /// own once hydrated.
    pub(crate) tz_offset: RwSignal<i32>,
    /// The message just opened from search: its room shows it and highlights it briefly.
    pub(crate) focus: RwSignal<Option<String>>,
    /// Notifications and jobs.
    pub activity: Activity,
    /// Who is online or idle (user id → status); absent means offline.
    pub(crate) presence: RwSignal<HashMap<String, String>>,
    /// The member lists fetched for the member panel (room id → members), kept up to date by
    /// joins, leaves and name changes while the tab is open.
    pub(crate) members: RwSignal<HashMap<String, Vec<Member>>>,
    /// My display name as it is now (the top bar shows it; `me` keeps the rest of me).
    pub(crate) my_name: RwSignal<Option<String>>,
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
    /// The message being edited in place (its id), if any.
    pub(crate) editing: RwSignal<Option<String>>,
    /// The message the composer answers, if any.
    pub(crate) replying: RwSignal<Option<Replying>>,
    /// The thread open in the side panel.
    pub(crate) thread: RwSignal<Option<ThreadState>>,
    /// Per room: the seq of the first message I had not read when I opened it ("New messages").
    pub(crate) divider: RwSignal<HashMap<String, i64>>,
    /// The message whose actions a tap opened (its DOM id): touch screens have no hover.
    pub(crate) actions_for: RwSignal<Option<String>>,
    /// The picture open full size in the viewer.
    pub(crate) viewing: RwSignal<Option<protocol::Upload>>,
    /// How many messages were counted unread live so far (see `load_rooms`).
    unread_bumps: StoredValue<u64>,
}

pub(crate) fn now() -> f64 {
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
    /// The state of `user`'s chat screen, starting from what the server rendered; `current` is
    /// the room on screen.
    pub fn new(user: &User, initial: Initial, current: Memo<Option<String>>) -> Chat {
        let mut logs = HashMap::new();
        if let (Some(room_id), Some(page)) = (initial.room_id, initial.messages) {
            let mut log = RoomLog {
                has_older: page.messages.len() as u32 == PAGE,
                msgs: page
                    .messages
                    .into_iter()
                    .map(|msg| UiMessage {
                        msg,
                        state: SendState::Sent,
                    })
                    .collect(),
                loaded: true,
                lines: Vec::new(),
            };
            log.add_lines(page.member_changes);
            logs.insert(room_id, log);
        }
        Chat {
            me: StoredValue::new(user.clone()),
            rooms_loaded: RwSignal::new(initial.rooms.is_some()),
            rooms: RwSignal::new(initial.rooms.unwrap_or_default()),
            logs: RwSignal::new(logs),
            current,
            live: LiveUi::new(),
            typing: RwSignal::new(Vec::new()),
            notice: RwSignal::new(None),
            tz_offset: RwSignal::new(0),
            focus: RwSignal::new(None),
            activity: Activity::new(),
            presence: RwSignal::new(HashMap::new()),
            members: RwSignal::new(HashMap::new()),
            my_name: RwSignal::new(user.display_name.clone()),
            last_input: StoredValue::new(0.0),
            idle_sent: StoredValue::new(false),
            outbox: StoredValue::new(Vec::new()),
            inflight: StoredValue::new(None),
            attempts: StoredValue::new(0),
            editing: RwSignal::new(None),
            replying: RwSignal::new(None),
            thread: RwSignal::new(None),
            divider: RwSignal::new(HashMap::new()),
            actions_for: RwSignal::new(None),
            viewing: RwSignal::new(None),
            unread_bumps: StoredValue::new(0),
        }
    }

    /// Browser only (effects do not run on the server): opens the live feeds from `cursor`,
    /// follows input and visibility for idle, and keeps the outbox and the open room up to date.
    pub fn start(self, cursor: Option<i64>) {
        let chat = self;
        let current = self.current;
        Effect::new(move |started: Option<()>| {
            if started.is_none() {
                chat.tz_offset.set(crate::time::browser_offset_minutes());
                chat.restore_outbox();
                live::start(&CHOOSABLE_FEEDS, cursor, chat.live, move |d| match d {
                    Delivery::Opened(feeds) => chat.opened(&feeds),
                    Delivery::Event(ev) => chat.apply(ev),
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
                    chat.place_divider(&room);
                    chat.mark_read(&room, true);
                } else {
                    leptos::task::spawn_local(chat.load_room(room));
                }
            }
        });
    }
}

impl Chat {
    pub(crate) fn room(&self, id: &str) -> Option<Room> {
        self.rooms
            .with(|rs| rs.iter().find(|r| r.id == id).cloned())
    }

    pub(crate) fn room_unread(&self, id: &str) -> i64 {
        self.rooms
            .with_untracked(|rs| rs.iter().find(|r| r.id == id).map_or(0, |r| r.unread))
    }

    /// My read position in a room: the id of the last message I read there.
    pub(crate) fn room_last_read(&self, id: &str) -> Option<String> {
        self.rooms.with_untracked(|rs| {
            rs.iter()
                .find(|r| r.id == id)
                .and_then(|r| r.last_read.clone())
        })
    }

    fn room_untracked(&self, id: &str) -> Option<Room> {
        self.rooms
            .with_untracked(|rs| rs.iter().find(|r| r.id == id).cloned())
    }

    /// The member list of a room, fetched (again) for the member panel.
    pub(crate) async fn load_members(self, room_id: String) {
        match api::get::<MemberList>(&format!("/api/rooms/{room_id}/members")).await {
            Ok(list) => self.members.update(|m| {
                m.insert(room_id, list.members);
            }),
            Err(e) => self.notify(e.message),
        }
    }

    /// Someone's new display name, everywhere this tab shows them: me, DM partners, messages,
    /// member lists, typing lines.
    pub(crate) fn person_renamed(&self, who: Author) {
        if who.id == self.me_id() {
            self.me
                .update_value(|m| m.display_name = who.display_name.clone());
            self.my_name.set(who.display_name.clone());
        }
        let shown = who.shown_name().to_string();
        self.rooms.update(|rs| {
            for r in rs.iter_mut() {
                if let Some(other) = r.dm_with.as_mut().filter(|o| o.id == who.id) {
                    *other = who.clone();
                }
            }
        });
        self.logs.update(|logs| {
            for log in logs.values_mut() {
                for m in log.msgs.iter_mut() {
                    if m.msg.author.id == who.id {
                        m.msg.author.display_name = who.display_name.clone();
                    }
                    // Who reacted, in the chips' tooltips.
                    for u in m.msg.reactions.iter_mut().flat_map(|r| r.users.iter_mut()) {
                        if u.id == who.id {
                            u.display_name = who.display_name.clone();
                        }
                    }
                }
                for line in log.lines.iter_mut().filter(|l| l.user.id == who.id) {
                    line.user = who.clone();
                }
            }
        });
        self.members.update(|lists| {
            for m in lists.values_mut().flatten().filter(|m| m.user.id == who.id) {
                m.user = who.clone();
            }
        });
        self.typing.update(|t| {
            for x in t.iter_mut().filter(|x| x.user_id == who.id) {
                x.name = shown.clone();
            }
        });
    }

    /// Someone joined or left a room I am in: its count, its member list, and a line in its
    /// timeline.
    fn member_changed(
        &self,
        event_id: i64,
        ts: i64,
        room: Room,
        who: Author,
        change: MembershipChange,
    ) {
        let room_id = room.id.clone();
        self.rooms.update(|rs| {
            if let Some(r) = rs.iter_mut().find(|r| r.id == room_id) {
                r.member_count = room.member_count;
            }
        });
        self.members.update(|lists| {
            if let Some(list) = lists.get_mut(room_id.as_str()) {
                list.retain(|m| m.user.id != who.id);
                if change == MembershipChange::Joined {
                    list.push(Member {
                        user: who.clone(),
                        joined_at: ts,
                    });
                }
            }
        });
        self.logs.update(|logs| {
            if let Some(log) = logs.get_mut(room_id.as_str()) {
                if !log.lines.iter().any(|l| l.event_id == event_id) {
                    log.lines.push(MemberLine {
                        event_id,
                        user: who,
                        change,
                    });
                }
            }
        });
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
    pub(crate) fn clear_error_notice(&self) {
        if self
            .notice
            .with_untracked(|n| n.as_ref().is_some_and(|n| !n.ok))
        {
            self.notice.set(None);
        }
    }

    /// Refreshes the room list. A message counted live while the request was out may or may
    /// not be in the server's answer (it does not say at which event it was taken), so then the
    /// counts held here stay: the live count is exact, the answer could count it twice.
    async fn load_rooms(self) {
        let bumps = self.unread_bumps.get_value();
        match api::get::<RoomList>("/api/rooms").await {
            Ok(mut list) => {
                if self.unread_bumps.get_value() != bumps {
                    self.rooms.with_untracked(|held| {
                        for r in list.rooms.iter_mut() {
                            if let Some(h) = held.iter().find(|h| h.id == r.id) {
                                r.unread = h.unread;
                            }
                        }
                    });
                }
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
                    // Older pages already loaded that reach this page stay before it (a jump
                    // to an old message loaded them; a second load of the room must not drop
                    // them), with their own "older" mark.
                    let first = list.messages.first().map(|m| m.seq);
                    let reaches = first.is_some_and(|first| {
                        log.last_confirmed_seq() + 1 >= first
                            && log
                                .msgs
                                .iter()
                                .any(|m| m.state == SendState::Sent && m.msg.seq < first)
                    });
                    let (older, older_has_more): (Vec<UiMessage>, bool) = if reaches {
                        let first = first.unwrap_or_default();
                        (
                            log.msgs
                                .iter()
                                .filter(|m| m.state == SendState::Sent && m.msg.seq < first)
                                .cloned()
                                .collect(),
                            log.has_older,
                        )
                    } else {
                        (Vec::new(), full)
                    };
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
                    log.msgs = older;
                    log.msgs
                        .extend(list.messages.into_iter().map(|msg| UiMessage {
                            msg,
                            state: SendState::Sent,
                        }));
                    log.msgs.extend(live);
                    log.msgs.extend(pending);
                    log.add_lines(list.member_changes);
                    log.has_older = older_has_more;
                    log.loaded = true;
                });
                for client_id in &arrived {
                    self.forget_outgoing(client_id);
                }
                self.pump();
                if self.current.get_untracked().as_deref() == Some(room_id.as_str()) {
                    self.place_divider(&room_id);
                }
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

    /// Shows `message_id` in its room (opening a search result): the room's newest page, then
    /// older pages until the message is among them (at most [`JUMP_PAGES`]), then highlights it.
    pub(crate) async fn open_at(self, room_id: String, message_id: String) {
        let has = |chat: Chat| {
            chat.logs.with_untracked(|l| {
                l.get(&room_id)
                    .map(|log| {
                        (
                            log.loaded,
                            log.has_older,
                            log.msgs.iter().any(|m| *m.msg.id == *message_id),
                        )
                    })
                    .unwrap_or((false, false, false))
            })
        };
        if !has(self).0 {
            self.load_room(room_id.clone()).await;
        }
        for _ in 0..JUMP_PAGES {
            let (_, older, found) = has(self);
            if found || !older {
                break;
            }
            self.load_older(room_id.clone()).await;
        }
        if has(self).2 {
            self.focus.set(Some(message_id.clone()));
            // Briefly: the mark fades (CSS) and is gone after a while.
            set_timeout(
                move || {
                    if self.focus.get_untracked().as_deref() == Some(message_id.as_str()) {
                        self.focus.set(None);
                    }
                },
                std::time::Duration::from_secs(4),
            );
        } else {
            self.notify("That message is too far back to show here.".to_string());
        }
    }

    pub(crate) async fn load_older(self, room_id: String) {
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
                    // Two loads racing (a scroll and a jump to a reply's original) add one copy.
                    older.retain(|m| !log.msgs.iter().any(|x| x.msg.id == m.msg.id));
                    older.append(&mut log.msgs);
                    log.msgs = older;
                    log.add_lines(list.member_changes);
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
                r.last_read = Some(last.id.to_string());
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

    pub(crate) fn me_id(&self) -> String {
        self.me.with_value(|m| m.id.to_string())
    }

    /// Whether the chat feed is live now (not tracked).
    pub(crate) fn chat_live(&self) -> bool {
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
        let reply_to = o.reply_to.as_ref().map(|id| {
            self.logs
                .with_untracked(|l| {
                    l.get(&o.room_id)
                        .and_then(|log| log.msgs.iter().find(|m| &m.msg.id == id))
                        .map(|m| crate::state::reply::reply_ref(&m.msg))
                })
                .unwrap_or_else(|| protocol::ReplyRef {
                    id: id.clone().into(),
                    author: protocol::Author {
                        id: String::new().into(),
                        username: String::new(),
                        display_name: None,
                    },
                    excerpt: String::new(),
                    deleted: false,
                })
        });
        let msg = Message {
            id: format!("pending:{}", o.client_id).into(),
            room_id: o.room_id.clone().into(),
            author: me.author(),
            body: o.body.clone(),
            client_id: o.client_id.clone(),
            created_at: o.created_at,
            seq: 0,
            event_id: 0,
            edited_at: None,
            deleted: false,
            reply_to,
            reply_count: 0,
            reactions: Vec::new(),
            attachments: o.attachments.clone(),
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
        self.thread_message(&msg);
        self.logs.update(|l| {
            l.entry(msg.room_id.to_string()).or_default().confirm(msg);
        });
        self.forget_outgoing(&client_id);
        self.pump();
    }

    /// Puts a message into the outbox (a retry keeps its client id) and sends what is due.
    pub(crate) fn send(
        self,
        room_id: String,
        body: String,
        retry_of: Option<String>,
        reply_to: Option<String>,
        attachments: Vec<protocol::Upload>,
    ) {
        let o = outbox::Outgoing {
            room_id,
            client_id: retry_of.unwrap_or_else(new_client_id),
            body,
            created_at: now() as i64,
            refused: None,
            reply_to,
            attachments,
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
    pub(crate) fn discard(self, room_id: &str, client_id: &str) {
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
            room_id: o.room_id.clone().into(),
            body: o.body.clone(),
            client_id: o.client_id.clone(),
            reply_to: o.reply_to.clone().map(Into::into),
            attachments: o.attachments.iter().map(|u| u.id.clone()).collect(),
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
                reply_to: o.reply_to.map(Into::into),
                attachments: o.attachments.iter().map(|u| u.id.clone()).collect(),
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

    /// A live connection carrying `feeds` is open (the first, or a reconnect).
    fn opened(self, feeds: &[Feed]) {
        // Back in touch with the server: what failed for want of it is moot.
        self.clear_error_notice();
        // A new connection: say where this tab stands.
        self.report_idle(true);
        // First connection, or a reconnect: the cursor covers the gap, but the room list
        // (unread counts) is cheap to refresh and catches anything outside the feed.
        leptos::task::spawn_local(self.load_rooms());
        leptos::task::spawn_local(self.activity.load());
        leptos::task::spawn_local(self.load_presence());
        if feeds.contains(&Feed::Chat) {
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

    /// Applies one live event.
    fn apply(self, ev: TypedEvent) {
        let (event_id, ts) = (ev.id.unwrap_or(0), ev.ts);
        if ev.feed == Feed::Notifications && matches!(ev.data, EventData::Read(_)) {
            // Notifications read (here, in another tab, or by opening a room): the server's
            // unread counts of the rooms may have moved with them.
            leptos::task::spawn_local(self.load_rooms());
        }
        if self.activity.apply(&ev) {
            return;
        }
        match ev.data {
            EventData::Message(msg) => {
                self.thread_message(&msg);
                let mine = msg.author.id == self.me.with_value(|m| m.id.clone());
                let client_id = msg.client_id.clone();
                let room_id = msg.room_id.clone();
                let author = msg.author.username.clone();
                let mut is_new = false;
                let mut gap = false;
                self.logs.update(|l| {
                    if let Some(log) = l.get_mut(room_id.as_str()) {
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
                    leptos::task::spawn_local(self.load_room(room_id.to_string()));
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
                        self.unread_bumps.update_value(|n| *n += 1);
                        self.rooms.update(|rs| {
                            if let Some(r) = rs.iter_mut().find(|r| r.id == room_id) {
                                r.unread += 1;
                            }
                        });
                    }
                }
            }
            EventData::MessageUpdated(msg) => self.message_updated(msg),
            EventData::Reaction(r) => self.reaction(r),
            EventData::Ack(ack) => self.confirmed(ack.message),
            EventData::Error(e) => match e.client_id {
                Some(cid) => self.send_failed(&cid, e.status, &e.code),
                None => self.notify(e.message),
            },
            EventData::Membership(Membership {
                change,
                room,
                user: Some(who),
            }) => self.member_changed(event_id, ts, room, who, change),
            EventData::Membership(Membership {
                change,
                room,
                user: None,
            }) => {
                let room_id = room.id.clone();
                if change == MembershipChange::Left && room.private {
                    self.rooms.update(|rs| rs.retain(|r| r.id != room_id));
                } else {
                    self.upsert_room(room);
                }
                if change == MembershipChange::Joined
                    && self.current.get_untracked().as_deref() == Some(room_id.as_str())
                {
                    leptos::task::spawn_local(self.load_room(room_id.into_string()));
                }
            }
            // Someone's new public room. Mine (or one I already hold) stays as it is: this
            // payload is the room as a non-member sees it.
            EventData::RoomCreated(room) if self.room_untracked(&room.id).is_none() => {
                self.upsert_room(room);
            }
            // A room's new name or topic. The payload's reader-dependent fields are not mine:
            // mine stay.
            EventData::RoomUpdated(r) => self.rooms.update(|rs| {
                if let Some(mine) = rs.iter_mut().find(|x| x.id == r.id) {
                    mine.name = r.name;
                    mine.topic = r.topic;
                    mine.member_count = r.member_count;
                    mine.private = r.private;
                }
            }),
            EventData::UserUpdated(who) => self.person_renamed(who),
            EventData::Typing(Typing { room_id, user }) => {
                let name = user.shown_name().to_string();
                let username = user.username;
                if username.is_empty() || username == self.me.with_value(|m| m.username.clone()) {
                    return;
                }
                self.typing.update(|t| {
                    t.retain(|x| !(x.room_id == room_id && x.username == username));
                    t.push(Typist {
                        room_id: room_id.into_string(),
                        user_id: user.id.into_string(),
                        username,
                        name,
                        until: now() + TYPING_SHOW_MS,
                    });
                });
            }
            EventData::Presence(Presence { user, status }) => {
                self.presence.update(|p| {
                    if status == PresenceStatus::Offline {
                        p.remove(user.id.as_str());
                    } else {
                        p.insert(user.id.into_string(), status.as_str().to_string());
                    }
                });
            }
            EventData::Resync(_) => {
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
