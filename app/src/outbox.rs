//! What a person wrote and the browser must not lose: the outbox (messages written but not yet
//! acknowledged by the server, in the order written) and the composer's draft per room. Both live
//! in `localStorage` under the signed-in user's id, so a reload, a crash or an outage keeps them.
//!
//! Every change reads, changes and writes one entry, so two tabs of the same person do not
//! overwrite each other's entries (both may send the same entry: the client id makes the server
//! keep it once). Browser only; on the server (or without storage) these do nothing.

use serde::{Deserialize, Serialize};

/// A message on its way to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    pub room_id: String,
    /// Stays the same over every attempt: the server keeps one message per client id.
    pub client_id: String,
    pub body: String,
    /// When it was written (local ms).
    pub created_at: i64,
    /// Set when the server refused it for good: a short reason for people. It then waits for
    /// Retry or Discard and is not sent by itself.
    #[serde(default)]
    pub refused: Option<String>,
    /// The message this one answers (its id), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Files already stored on the server that the message carries, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<protocol::Upload>,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn outbox_key(user_id: &str) -> String {
    format!("switchboard.outbox.{user_id}")
}

fn draft_key(user_id: &str, room_id: &str) -> String {
    format!("switchboard.draft.{user_id}.{room_id}")
}

/// The outbox as stored, oldest first.
pub fn load(user_id: &str) -> Vec<Outgoing> {
    storage()
        .and_then(|s| s.get_item(&outbox_key(user_id)).ok().flatten())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn change(user_id: &str, f: impl FnOnce(&mut Vec<Outgoing>)) {
    let Some(s) = storage() else { return };
    let mut all = load(user_id);
    f(&mut all);
    let key = outbox_key(user_id);
    let _ = if all.is_empty() {
        s.remove_item(&key)
    } else {
        match serde_json::to_string(&all) {
            Ok(text) => s.set_item(&key, &text),
            Err(_) => Ok(()),
        }
    };
}

/// Adds `o`, or replaces the entry with its client id (keeping its place).
pub fn put(user_id: &str, o: &Outgoing) {
    change(user_id, |all| {
        match all.iter_mut().find(|x| x.client_id == o.client_id) {
            Some(x) => *x = o.clone(),
            None => all.push(o.clone()),
        }
    });
}

/// Forgets an entry: the server has it, or the person discarded it.
pub fn remove(user_id: &str, client_id: &str) {
    change(user_id, |all| all.retain(|x| x.client_id != client_id));
}

/// The draft kept for a room, if any.
pub fn draft(user_id: &str, room_id: &str) -> Option<String> {
    storage()
        .and_then(|s| s.get_item(&draft_key(user_id, room_id)).ok().flatten())
        .filter(|d| !d.is_empty())
}

/// Keeps what is in a room's composer (an empty text forgets it).
pub fn set_draft(user_id: &str, room_id: &str, text: &str) {
    let Some(s) = storage() else { return };
    let key = draft_key(user_id, room_id);
    let _ = if text.is_empty() {
        s.remove_item(&key)
    } else {
        s.set_item(&key, text)
    };
}

fn draft_files_key(user_id: &str, room_id: &str) -> String {
    format!("switchboard.draft-files.{user_id}.{room_id}")
}

/// Files uploaded in a room's composer and not sent yet (they are kept on the server for a day).
pub fn draft_files(user_id: &str, room_id: &str) -> Vec<protocol::Upload> {
    storage()
        .and_then(|s| {
            s.get_item(&draft_files_key(user_id, room_id))
                .ok()
                .flatten()
        })
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// Keeps the files waiting in a room's composer (none forgets them).
pub fn set_draft_files(user_id: &str, room_id: &str, files: &[protocol::Upload]) {
    let Some(s) = storage() else { return };
    let key = draft_files_key(user_id, room_id);
    let _ = match serde_json::to_string(files) {
        Ok(text) if !files.is_empty() => s.set_item(&key, &text),
        _ => s.remove_item(&key),
    };
}
