//! `data-testid` values the browser tests select by. Keep in sync with end2end/tests/testids.ts.

pub const AUTH_FORM: &str = "auth-form";
pub const AUTH_ERROR: &str = "auth-error";
pub const ROOM_LIST: &str = "room-list";
pub const NEW_ROOM_NAME: &str = "new-room-name";
pub const NEW_ROOM_PRIVATE: &str = "new-room-private";
pub const NEW_ROOM_SUBMIT: &str = "new-room-submit";
pub const DM_USERNAME: &str = "dm-username";
pub const DM_SUBMIT: &str = "dm-submit";
pub const ROOM_TITLE: &str = "room-title";
pub const JOIN_ROOM: &str = "join-room";
pub const LEAVE_ROOM: &str = "leave-room";
pub const INVITE_USERNAME: &str = "invite-username";
pub const INVITE_SUBMIT: &str = "invite-submit";
pub const MESSAGES: &str = "messages";
pub const MESSAGE: &str = "message";
pub const MESSAGE_BODY: &str = "message-body";
pub const LOAD_OLDER: &str = "load-older";
pub const COMPOSER: &str = "composer";
pub const SEND: &str = "send";
pub const CONNECTION: &str = "connection";
pub const SIGN_OUT: &str = "sign-out";
pub const SIGN_OUT_EVERYWHERE: &str = "sign-out-everywhere";
pub const TYPING: &str = "typing";
pub const NOTICE: &str = "notice";
pub const SKIP_LINK: &str = "skip-link";
pub const CLOSE_SETTINGS: &str = "close-settings";
