//! Switchboard's wire types: the JSON shapes of ../shared/API.md (and docs/API.md), shared by the
//! server, the browser app and test or load clients. Nothing here depends on a runtime, so it
//! compiles for wasm as well.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest message body in characters, after trimming. Long enough for a pasted log excerpt,
/// short enough that one message can never dominate a frame or a poll answer.
pub const MAX_BODY_CHARS: usize = 4000;
/// Longest room name in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 80;
/// Longest client-generated id (idempotency key) in bytes; a UUID is 36.
pub const MAX_CLIENT_ID_LEN: usize = 64;
/// Password length bounds: a floor for safety, a ceiling so hashing cost stays bounded.
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 256;
/// History page size: default and ceiling.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub id: String,
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: String,
    pub name: String,
    pub private: bool,
    pub is_member: bool,
    pub unread: i64,
    /// For a direct-message room: the other person. Absent for ordinary rooms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm_with: Option<Author>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub room_id: String,
    pub author: Author,
    pub body: String,
    pub client_id: String,
    pub created_at: i64,
    /// Position of the message in its room (1, 2, 3, …); gap-free per room.
    pub seq: i64,
    /// The global event id that published this message (the live cursor).
    #[serde(default)]
    pub event_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    /// `mention`, `dm`, `invite`, `job_finished`, `job_failed`, `announcement`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// Where a click goes: `/rooms/{id}`, `/rooms/{id}#m-{message}`, `/jobs#{id}`.
    pub link: String,
    pub created_at: i64,
    pub read: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotificationList {
    pub notifications: Vec<Notification>,
    pub unread: i64,
}

/// A background job's snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    /// `export_room` or `demo`.
    pub kind: String,
    /// `queued`, `running`, `done`, `failed`, `cancelled`.
    pub state: String,
    /// 0.0–1.0.
    pub progress: f64,
    pub done: i64,
    pub total: i64,
    pub message: String,
    /// Estimated time left, once the job has run long enough to tell.
    pub eta_ms: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// For an export that is done: where to download it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_url: Option<String>,
    /// The job's room (exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// The room's name when the job started (exports), so the job can say what it exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_name: Option<String>,
}

impl Job {
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "done" | "failed" | "cancelled")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobList {
    pub jobs: Vec<Job>,
}

/// The four live feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feed {
    Chat,
    Notifications,
    Jobs,
    Control,
}

impl Feed {
    pub const ALL: [Feed; 4] = [Feed::Chat, Feed::Notifications, Feed::Jobs, Feed::Control];

    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Chat => "chat",
            Feed::Notifications => "notifications",
            Feed::Jobs => "jobs",
            Feed::Control => "control",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Feed {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "chat" => Ok(Feed::Chat),
            "notifications" => Ok(Feed::Notifications),
            "jobs" => Ok(Feed::Jobs),
            "control" => Ok(Feed::Control),
            other => Err(ParseError(format!("unknown feed `{other}`"))),
        }
    }
}

/// A set of feeds, as a bit set (cheap to copy and test on the hot path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeedSet(u8);

impl FeedSet {
    pub fn contains(self, feed: Feed) -> bool {
        self.0 & feed.bit() != 0
    }

    pub fn insert(&mut self, feed: Feed) {
        self.0 |= feed.bit();
    }

    pub fn iter(self) -> impl Iterator<Item = Feed> {
        Feed::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    /// Parses `chat,notifications`. `control` is always included, as API.md says. An empty or
    /// absent list means every feed.
    pub fn parse(list: Option<&str>) -> Result<FeedSet, ParseError> {
        let mut set = FeedSet::default();
        match list.map(str::trim) {
            None | Some("") => {
                for f in Feed::ALL {
                    set.insert(f);
                }
            }
            Some(list) => {
                for part in list.split(',') {
                    set.insert(part.trim().parse()?);
                }
                set.insert(Feed::Control);
            }
        }
        Ok(set)
    }
}

impl FromIterator<Feed> for FeedSet {
    fn from_iter<I: IntoIterator<Item = Feed>>(iter: I) -> Self {
        let mut set = FeedSet::default();
        for f in iter {
            set.insert(f);
        }
        set
    }
}

/// The four transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Websocket,
    Sse,
    LongPoll,
    ShortPoll,
}

impl Transport {
    /// The fallback order of API.md.
    pub const ALL: [Transport; 4] = [
        Transport::Websocket,
        Transport::Sse,
        Transport::LongPoll,
        Transport::ShortPoll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Websocket => "websocket",
            Transport::Sse => "sse",
            Transport::LongPoll => "long_poll",
            Transport::ShortPoll => "short_poll",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Transport::Websocket => "WebSocket",
            Transport::Sse => "SSE",
            Transport::LongPoll => "long polling",
            Transport::ShortPoll => "short polling",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Transport::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| ParseError(format!("unknown transport `{s}`")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Event types. Stored ones move the cursor; ephemeral ones carry `id: null`.
pub mod kind {
    /// A chat message (data = Message).
    pub const MESSAGE: &str = "message";
    /// My membership changed (data = {"room": Room, "joined": bool}).
    pub const MEMBERSHIP: &str = "membership";
    /// WebSocket: the opening frame (data = {"conn_id","cursor","heartbeat_ms"}). Ephemeral.
    pub const HELLO: &str = "hello";
    /// WebSocket: answer to a `send` frame after commit (data = {"client_id","message"}).
    pub const ACK: &str = "ack";
    /// WebSocket: a client frame was refused (data = {"client_id"?, "code", "message"}).
    pub const ERROR: &str = "error";
    /// The cursor is older than the log the server keeps: reload state over REST.
    pub const RESYNC: &str = "resync";
    /// A public room was created (chat feed, to every signed-in user; data = the Room as a
    /// non-member sees it: `is_member` false, `unread` 0).
    pub const ROOM_CREATED: &str = "room_created";
    /// Someone is typing (ephemeral).
    pub const TYPING: &str = "typing";
    /// A notification for me (notifications feed; data = Notification).
    pub const NOTIFICATION: &str = "notification";
    /// Some of my notifications were marked read (data = {"ids":[…]} or {"all":true}).
    pub const READ: &str = "read";
    /// A job's new snapshot (jobs feed; data = Job).
    pub const JOB: &str = "job";
    /// Someone's presence changed (ephemeral; data = {"user","status"}).
    pub const PRESENCE: &str = "presence";
    /// My transport settings (or the global switches) changed (control feed); data is my
    /// `TransportSettings`, or `{"switches": …}` for a global change (fetch yours again).
    pub const TRANSPORT: &str = "transport";
    /// SSE and polls: the server ends this connection (data = {"code","reason"}, the WebSocket
    /// close code and reason it would have used).
    pub const DISCONNECT: &str = "disconnect";
}

/// One live event, identical on every transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: Option<i64>,
    pub feed: Feed,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: serde_json::Value,
    pub ts: i64,
}

/// Frames a WebSocket client may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Send {
        room_id: String,
        body: String,
        client_id: String,
    },
    Typing {
        room_id: String,
    },
    /// I am `online` again or `idle` (no input for a while, or the tab hidden).
    Presence {
        status: String,
    },
}

impl ClientFrame {
    /// Reads one text frame from a WebSocket client. Any input gives a frame or an error saying
    /// what is wrong, never a panic (fuzzed in `tests/frames.rs`).
    pub fn parse(text: &str) -> Result<ClientFrame, ParseError> {
        serde_json::from_str(text).map_err(|e| ParseError(format!("unreadable frame: {e}")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub client_id: String,
    pub message: Message,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRoom {
    pub name: String,
    #[serde(default)]
    pub private: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsernameBody {
    pub username: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendMessage {
    pub body: String,
    pub client_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadPosition {
    pub message_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomList {
    pub rooms: Vec<Room>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageList {
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<User>,
}

/// Case-folds and checks a username: 3–32 chars of `a-z 0-9 _ . -`.
pub fn normalize_username(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim().to_lowercase();
    let len = name.chars().count();
    if !(3..=32).contains(&len) {
        return Err("Usernames are 3 to 32 characters long.");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
    {
        return Err("Usernames may use only a-z, 0-9, _ . and -.");
    }
    Ok(name)
}

/// `one` for exactly one, else `many`: "1 person", "2 people", "0 people".
pub fn plural<'a>(n: i64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// A count with its noun: `count(1, "message", "messages")` is "1 message".
pub fn count(n: impl Into<i64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", plural(n, one, many))
}

/// Checks a password's length (characters, not bytes).
pub fn check_password(password: &str) -> Result<(), &'static str> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_CHARS {
        return Err("Passwords are at least 8 characters long.");
    }
    if len > MAX_PASSWORD_CHARS {
        return Err("Passwords are at most 256 characters long.");
    }
    Ok(())
}

/// Trims a message body and checks its length and characters; returns the body to store.
pub fn check_body(raw: &str) -> Result<&str, BodyError> {
    let body = raw.trim();
    if body.is_empty() {
        return Err(BodyError::Empty);
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(BodyError::TooLong);
    }
    match check_text(body) {
        Ok(()) => Ok(body),
        Err(TextError::Invisible) => Err(BodyError::Empty),
        Err(_) => Err(BodyError::Control),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Nothing a reader would see: empty, white space or zero-width characters only.
    Empty,
    TooLong,
    /// A control character other than newline and tab.
    Control,
}

/// What is wrong with the characters of a text (see [`check_text`] and [`check_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError {
    /// A control character (for a name, newline and tab count as ones).
    Control,
    /// Only white space and zero-width characters: it would show as nothing.
    Invisible,
    /// A bidirectional override or isolate, which can make a name read as another one.
    Bidi,
}

impl TextError {
    /// Words for a person, about a `what` ("Messages", "Room names").
    pub fn message(self, what: &str) -> String {
        match self {
            TextError::Control => format!("{what} cannot contain control characters."),
            TextError::Invisible => format!("{what} need some visible text."),
            TextError::Bidi => format!("{what} cannot contain text-direction controls."),
        }
    }
}

/// A character that shows as nothing: white space, zero-width spaces and joiners, the word
/// joiner, the byte-order mark, the soft hyphen.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{180E}' | '\u{00AD}'
        )
}

/// Bidirectional embeddings, overrides, isolates and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Checks multi-line text people write (message bodies, announcements): no control characters
/// but newline and tab (NUL among them, which PostgreSQL's text cannot hold, so both databases
/// treat text alike), and something visible.
pub fn check_text(text: &str) -> Result<(), TextError> {
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(TextError::Control);
    }
    if text.chars().all(is_invisible) {
        return Err(TextError::Invisible);
    }
    Ok(())
}

/// Checks a one-line name or title (room names, display names, announcement titles): no control
/// characters at all, no text-direction controls, and something visible.
pub fn check_name(name: &str) -> Result<(), TextError> {
    if name.chars().any(char::is_control) {
        return Err(TextError::Control);
    }
    if name.chars().any(is_bidi_control) {
        return Err(TextError::Bidi);
    }
    if name.chars().all(is_invisible) {
        return Err(TextError::Invisible);
    }
    Ok(())
}

/// The usernames a body mentions (`@name`), case-folded, deduplicated, in order.
pub fn mentions(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find('@') {
        let before_ok = at == 0
            || !rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric());
        let tail = &rest[at + 1..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(tail.len());
        let name = tail[..end].trim_end_matches('.').to_lowercase();
        if before_ok && normalize_username(&name).is_ok() && !out.contains(&name) {
            out.push(name);
        }
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_singular_for_one_only() {
        assert_eq!(count(1, "person", "people"), "1 person");
        assert_eq!(count(0, "person", "people"), "0 people");
        assert_eq!(count(2, "message", "messages"), "2 messages");
        assert_eq!(count(-1, "step", "steps"), "-1 steps");
        assert_eq!(count(1u32, "connection", "connections"), "1 connection");
        assert_eq!(plural(11, "reconnect", "reconnects"), "reconnects");
    }

    #[test]
    fn usernames_are_folded_and_checked() {
        assert_eq!(normalize_username(" Alice_1 ").unwrap(), "alice_1");
        assert!(normalize_username("ab").is_err());
        assert!(normalize_username(&"a".repeat(33)).is_err());
        assert!(normalize_username("bad name").is_err());
        assert!(normalize_username("émile").is_err());
    }

    #[test]
    fn feed_sets_parse_and_always_include_control() {
        let set = FeedSet::parse(Some("chat")).unwrap();
        assert!(set.contains(Feed::Chat) && set.contains(Feed::Control));
        assert!(!set.contains(Feed::Jobs));
        assert_eq!(FeedSet::parse(None).unwrap().iter().count(), 4);
        assert!(FeedSet::parse(Some("chat,bogus")).is_err());
    }

    #[test]
    fn bodies_are_trimmed_and_bounded() {
        assert_eq!(check_body("  hi \n").unwrap(), "hi");
        assert_eq!(check_body(" \n "), Err(BodyError::Empty));
        assert_eq!(
            check_body("\u{200B}\u{FEFF} \u{2060}"),
            Err(BodyError::Empty)
        );
        assert_eq!(check_body("a\0b"), Err(BodyError::Control));
        assert_eq!(check_body("a\rb"), Err(BodyError::Control));
        assert_eq!(check_body("a\u{7}b"), Err(BodyError::Control));
        assert_eq!(check_body("line\n\tindented").unwrap(), "line\n\tindented");
        assert_eq!(
            check_body("zero\u{200B}width").unwrap(),
            "zero\u{200B}width"
        );
        assert_eq!(check_name("lobby"), Ok(()));
        assert_eq!(check_name("two\nlines"), Err(TextError::Control));
        assert_eq!(check_name("evil\u{202E}gnp.exe"), Err(TextError::Bidi));
        assert_eq!(check_name("\u{2066}x"), Err(TextError::Bidi));
        assert_eq!(check_name("\u{200B}"), Err(TextError::Invisible));
        assert_eq!(check_name("שלום"), Ok(()));
        assert!(check_body(&"é".repeat(MAX_BODY_CHARS)).is_ok());
        assert_eq!(
            check_body(&"x".repeat(MAX_BODY_CHARS + 1)),
            Err(BodyError::TooLong)
        );
    }

    #[test]
    fn mentions_are_found_once_and_not_in_emails() {
        assert_eq!(
            mentions("hi @Bob and @carol. also @bob, mail x@bob.com"),
            vec!["bob", "carol"]
        );
        assert!(mentions("@x").is_empty());
    }

    #[test]
    fn client_frames_round_trip_and_reject_unknown_types() {
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"send","room_id":"r","body":"b","client_id":"c"}"#)
                .unwrap();
        assert!(matches!(f, ClientFrame::Send { .. }));
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"nope"}"#).is_err());
    }
}

/// WebSocket close codes and what a client should do after each.
pub mod close {
    /// The client or server ended the session on purpose.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down or restarting: reconnect (with backoff) and resume by cursor.
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text message was not valid UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// The client broke a policy (flooded presence or typing frames): reconnect, more slowly.
    pub const POLICY: u16 = 1008;
    /// A client frame was larger than the server accepts.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed; reconnect with backoff.
    pub const INTERNAL: u16 = 1011;
    /// The session is gone (signed out elsewhere): do not reconnect; sign in again.
    pub const UNAUTHORIZED: u16 = 4001;
    /// This transport was switched off by an administrator: move to the next enabled one.
    pub const TRANSPORT_DISABLED: u16 = 4003;
    /// The client did not keep up (or did not answer pings): reconnect and resume by cursor.
    pub const SLOW_CONSUMER: u16 = 4008;

    /// Whether a client should reconnect after the server closed with `code`.
    pub fn should_reconnect(code: u16) -> bool {
        !matches!(code, NORMAL | UNAUTHORIZED | TRANSPORT_DISABLED)
    }
}

/// The feeds whose transport a user chooses (`control` rides along on every connection).
pub const CHOOSABLE_FEEDS: [Feed; 3] = [Feed::Chat, Feed::Notifications, Feed::Jobs];

/// The default transport of a feed.
pub fn default_transport(feed: Feed) -> Transport {
    match feed {
        Feed::Chat => Transport::Websocket,
        Feed::Notifications => Transport::Sse,
        Feed::Jobs | Feed::Control => Transport::ShortPoll,
    }
}

/// Which transports an administrator has left on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switches {
    pub websocket: bool,
    pub sse: bool,
    pub long_poll: bool,
    pub short_poll: bool,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            websocket: true,
            sse: true,
            long_poll: true,
            short_poll: true,
        }
    }
}

impl Switches {
    pub fn enabled(&self, t: Transport) -> bool {
        match t {
            Transport::Websocket => self.websocket,
            Transport::Sse => self.sse,
            Transport::LongPoll => self.long_poll,
            Transport::ShortPoll => self.short_poll,
        }
    }

    pub fn set(&mut self, t: Transport, on: bool) {
        match t {
            Transport::Websocket => self.websocket = on,
            Transport::Sse => self.sse = on,
            Transport::LongPoll => self.long_poll = on,
            Transport::ShortPoll => self.short_poll = on,
        }
    }

    pub fn any(&self) -> bool {
        Transport::ALL.iter().any(|t| self.enabled(*t))
    }

    /// `preferred` if it is on, else the next one on in the order websocket → sse → long_poll →
    /// short_poll (wrapping round). With everything off, `preferred` itself.
    pub fn resolve(&self, preferred: Transport) -> Transport {
        let start = Transport::ALL
            .iter()
            .position(|t| *t == preferred)
            .unwrap_or(0);
        (0..Transport::ALL.len())
            .map(|i| Transport::ALL[(start + i) % Transport::ALL.len()])
            .find(|t| self.enabled(*t))
            .unwrap_or(preferred)
    }
}

/// One transport per choosable feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedTransports {
    pub chat: Transport,
    pub notifications: Transport,
    pub jobs: Transport,
}

impl FeedTransports {
    pub fn get(&self, feed: Feed) -> Transport {
        match feed {
            Feed::Chat => self.chat,
            Feed::Notifications => self.notifications,
            Feed::Jobs | Feed::Control => self.jobs,
        }
    }

    pub fn set(&mut self, feed: Feed, t: Transport) {
        match feed {
            Feed::Chat => self.chat = t,
            Feed::Notifications => self.notifications = t,
            Feed::Jobs | Feed::Control => self.jobs = t,
        }
    }

    pub fn defaults() -> Self {
        FeedTransports {
            chat: default_transport(Feed::Chat),
            notifications: default_transport(Feed::Notifications),
            jobs: default_transport(Feed::Jobs),
        }
    }
}

/// An optional transport per choosable feed (admin overrides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FeedOverrides {
    pub chat: Option<Transport>,
    pub notifications: Option<Transport>,
    pub jobs: Option<Transport>,
}

impl FeedOverrides {
    pub fn get(&self, feed: Feed) -> Option<Transport> {
        match feed {
            Feed::Chat => self.chat,
            Feed::Notifications => self.notifications,
            Feed::Jobs | Feed::Control => self.jobs,
        }
    }

    pub fn set(&mut self, feed: Feed, t: Option<Transport>) {
        match feed {
            Feed::Chat => self.chat = t,
            Feed::Notifications => self.notifications = t,
            Feed::Jobs | Feed::Control => self.jobs = t,
        }
    }
}

/// `GET /api/me/transports`: my choices (the top-level fields, as API.md has them), what an
/// admin overrode, what is switched on, and what my clients must use (`effective`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportSettings {
    pub chat: Transport,
    pub notifications: Transport,
    pub jobs: Transport,
    pub effective: FeedTransports,
    #[serde(default)]
    pub overrides: FeedOverrides,
    #[serde(default)]
    pub enabled: Switches,
    /// Short-poll interval the client should use.
    #[serde(default = "default_short_poll_ms")]
    pub short_poll_ms: u32,
    /// Long-poll hold the client should ask for (seconds).
    #[serde(default = "default_long_poll_s")]
    pub long_poll_s: u32,
}

pub fn default_short_poll_ms() -> u32 {
    2000
}

pub fn default_long_poll_s() -> u32 {
    25
}

impl TransportSettings {
    /// Computes the effective transports from choices, overrides and switches.
    pub fn new(
        chosen: FeedTransports,
        overrides: FeedOverrides,
        enabled: Switches,
        short_poll_ms: u32,
        long_poll_s: u32,
    ) -> Self {
        let mut effective = chosen;
        for feed in CHOOSABLE_FEEDS {
            let preferred = overrides.get(feed).unwrap_or(chosen.get(feed));
            effective.set(feed, enabled.resolve(preferred));
        }
        TransportSettings {
            chat: chosen.chat,
            notifications: chosen.notifications,
            jobs: chosen.jobs,
            effective,
            overrides,
            enabled,
            short_poll_ms,
            long_poll_s,
        }
    }
}

/// `GET /api/time`: the server's clock, for clients estimating their offset (NTP-style: the
/// round trip with the smallest delay wins, offset = server time − midpoint of the request).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ServerTime {
    /// Unix time in milliseconds, with a fractional part (µs resolution).
    pub now_ms: f64,
}

/// Most reports in one `POST /api/live/stats`, and most latency samples in one report.
pub const MAX_STATS_REPORTS: usize = 16;
pub const MAX_STATS_SAMPLES: usize = 500;
/// Largest latency sample accepted (ms): ten minutes.
pub const MAX_STATS_LATENCY_MS: f64 = 600_000.0;

/// `POST /api/live/stats`: what a browser measured since its last report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientStats {
    pub reports: Vec<ClientReport>,
}

/// One (transport, feed)'s measurements: commit-to-screen latencies, each corrected by the
/// client's clock offset, and the gaps and duplicates it noticed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientReport {
    pub transport: Transport,
    pub feed: Feed,
    #[serde(default)]
    pub latency_ms: Vec<f64>,
    #[serde(default)]
    pub gaps: u64,
    #[serde(default)]
    pub duplicates: u64,
}

impl ClientStats {
    /// Checks the limits; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.reports.len() > MAX_STATS_REPORTS {
            return Err(format!("at most {MAX_STATS_REPORTS} reports"));
        }
        for r in &self.reports {
            if r.latency_ms.len() > MAX_STATS_SAMPLES {
                return Err(format!(
                    "at most {MAX_STATS_SAMPLES} latency samples per report"
                ));
            }
            if r.latency_ms
                .iter()
                .any(|v| !v.is_finite() || *v < 0.0 || *v > MAX_STATS_LATENCY_MS)
            {
                return Err(format!(
                    "latency samples are milliseconds from 0 to {MAX_STATS_LATENCY_MS}"
                ));
            }
            if r.gaps > 10_000 || r.duplicates > 10_000 {
                return Err("gaps and duplicates are counts up to 10000".into());
            }
        }
        Ok(())
    }
}

/// A poll answer: the events after the cursor, and the cursor to send next.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PollAnswer {
    pub events: Vec<Event>,
    pub cursor: i64,
    /// Send back as `eph` to also get the ephemeral events (typing, presence) that happened
    /// between polls.
    #[serde(default)]
    pub eph: Option<u64>,
}

#[cfg(test)]
mod transport_tests {
    use super::*;

    #[test]
    fn a_disabled_transport_falls_back_in_order_and_wraps() {
        let mut s = Switches::default();
        assert_eq!(s.resolve(Transport::Websocket), Transport::Websocket);
        s.websocket = false;
        assert_eq!(s.resolve(Transport::Websocket), Transport::Sse);
        s.sse = false;
        assert_eq!(s.resolve(Transport::Websocket), Transport::LongPoll);
        s.short_poll = false;
        s.long_poll = true;
        s.websocket = true;
        assert_eq!(
            s.resolve(Transport::ShortPoll),
            Transport::Websocket,
            "wraps round"
        );
    }

    #[test]
    fn overrides_win_over_choices_and_switches_win_over_both() {
        let mut chosen = FeedTransports::defaults();
        chosen.jobs = Transport::Sse;
        let overrides = FeedOverrides {
            chat: Some(Transport::LongPoll),
            ..Default::default()
        };
        let on = Switches {
            sse: false,
            ..Default::default()
        };
        let s = TransportSettings::new(chosen, overrides, on, 2000, 25);
        assert_eq!(s.effective.chat, Transport::LongPoll);
        assert_eq!(
            s.effective.notifications,
            Transport::LongPoll,
            "sse off → long poll"
        );
        assert_eq!(s.effective.jobs, Transport::LongPoll);
        assert_eq!(s.chat, Transport::Websocket, "my own choice is kept");
    }
}
