//! Pieces the pages and the layout share. They read and change the state in
//! [`crate::state`]; none of them knows a page.

pub mod bell;
pub mod composer;
pub mod emoji_picker;
pub mod field;
pub mod message;
pub mod pending_files;
pub mod profile;
pub mod room_info;
pub mod search;
pub mod sidebar;
pub mod thread;
pub mod transports;
pub mod viewer;
