//! A message's life after it is sent: edits, deletes, reactions, replies and threads, and where
//! I left off reading (the "New messages" divider). The requests go over HTTP; what they change
//! comes back as `message_updated` and `reaction` events, applied here to every copy of the
//! message on screen (the room's log and the open thread), so every tab and every person sees
//! the same thing.

use crate::api;
use crate::state::chat::{Chat, SendState, UiMessage};
pub use crate::state::reply::{reply_ref, Replying, ThreadState};
use leptos::prelude::*;
use protocol::{
    EditMessage, Message, Reaction as Chip, ReactionEvent as Reaction, Thread, REACTION_USERS_SHOWN,
};

/// Applies a reaction event to a message's chips. `me` is my user id: my own reactions (from
/// any tab) light up my chip; the count is the server's.
pub fn apply_reaction(msg: &mut Message, r: &Reaction, me: &str) {
    match msg.reactions.iter_mut().position(|c| c.emoji == r.emoji) {
        Some(i) => {
            let chip = &mut msg.reactions[i];
            chip.count = r.count;
            if r.user.id == me {
                chip.mine = r.added;
            }
            chip.users.retain(|u| u.id != r.user.id);
            if r.added {
                chip.users.push(r.user.clone());
            }
            if chip.count <= 0 {
                msg.reactions.remove(i);
            }
        }
        None if r.added && r.count > 0 => msg.reactions.push(Chip {
            emoji: r.emoji.clone(),
            count: r.count,
            mine: r.user.id == me,
            users: vec![r.user.clone()],
        }),
        None => {}
    }
}

/// A new version of a message (edited, deleted, a new reply count) over the copy held. The
/// event is the same for every reader (`mine` false): mine is whether I am among those listed,
/// or, past the listed few, what this reader knew.
pub fn apply_update(held: &mut Message, new: &Message, me: &str) {
    let old = std::mem::replace(held, new.clone());
    for chip in held.reactions.iter_mut() {
        let was_mine = old
            .reactions
            .iter()
            .any(|c| c.emoji == chip.emoji && c.mine);
        chip.mine = chip.mine
            || chip.users.iter().any(|u| u.id == me)
            || (was_mine && chip.users.len() >= REACTION_USERS_SHOWN);
    }
    // The log's order and live cursor are the original message's.
    held.seq = old.seq;
    if held.event_id == 0 {
        held.event_id = old.event_id;
    }
}

/// Where the "New messages" divider goes when I open a room: above the first message by
/// someone else after my read position `last_read` (the id of the last message I read), as
/// that message's seq. None when nothing after it is by others. When my read position is not
/// among the loaded messages (older than the page on screen, or none yet) and something is
/// `unread`, the divider goes above the first loaded message by others.
pub fn divider_seq(
    msgs: &[UiMessage],
    last_read: Option<&str>,
    unread: i64,
    me: &str,
) -> Option<i64> {
    let mut sent = msgs.iter().filter(|m| m.state == SendState::Sent);
    let read_here = last_read.is_some_and(|id| sent.clone().any(|m| m.msg.id == id));
    if read_here {
        let id = last_read.unwrap_or_default();
        sent.by_ref().find(|m| m.msg.id == id);
    } else if unread <= 0 {
        return None;
    }
    sent.find(|m| m.msg.author.id != me).map(|m| m.msg.seq)
}

fn message_url(room_id: &str, message_id: &str) -> String {
    format!("/api/rooms/{room_id}/messages/{message_id}")
}

/// A reaction's path segment: the emoji percent-encoded (every byte, so any emoji is safe).
fn emoji_segment(emoji: &str) -> String {
    emoji.bytes().map(|b| format!("%{b:02X}")).collect()
}

impl Chat {
    /// Runs `f` on every copy of message `id` held (the room's log, the open thread).
    pub(crate) fn each_copy(&self, room_id: &str, id: &str, mut f: impl FnMut(&mut Message)) {
        self.logs.update(|logs| {
            if let Some(log) = logs.get_mut(room_id) {
                for m in log.msgs.iter_mut().filter(|m| m.msg.id == id) {
                    f(&mut m.msg);
                }
            }
        });
        self.thread.update(|t| {
            if let Some(t) = t.as_mut().filter(|t| t.room_id == room_id) {
                for m in t.msgs.iter_mut().filter(|m| m.id == id) {
                    f(m);
                }
            }
        });
    }

    /// `message_updated`: an edit, a delete or a new reply count, wherever the message shows.
    pub(crate) fn message_updated(&self, msg: Message) {
        let (room_id, id) = (msg.room_id.to_string(), msg.id.to_string());
        let me = self.me_id();
        self.each_copy(&room_id, &id, |held| apply_update(held, &msg, &me));
        // Replies quoting a deleted message say so.
        if msg.deleted {
            self.logs.update(|logs| {
                if let Some(log) = logs.get_mut(&room_id) {
                    for m in log.msgs.iter_mut() {
                        if let Some(r) = m.msg.reply_to.as_mut().filter(|r| r.id == id) {
                            r.excerpt = String::new();
                            r.deleted = true;
                        }
                    }
                }
            });
            if self.editing.get_untracked().as_deref() == Some(id.as_str()) {
                self.editing.set(None);
            }
        }
    }

    /// A new message: a reply joins the open thread it answers.
    pub(crate) fn thread_message(&self, msg: &Message) {
        let Some(parent) = msg.reply_to.as_ref().map(|r| r.id.clone()) else {
            return;
        };
        self.thread.update(|t| {
            if let Some(t) = t
                .as_mut()
                .filter(|t| t.root_id == parent && t.room_id == msg.room_id)
            {
                match t.msgs.iter_mut().find(|m| m.id == msg.id) {
                    Some(held) => *held = msg.clone(),
                    None => t.msgs.push(msg.clone()),
                }
            }
        });
    }

    /// `reaction`: someone (maybe me, in another tab) added or took back an emoji.
    pub(crate) fn reaction(&self, r: Reaction) {
        let me = self.me_id();
        self.each_copy(&r.room_id, &r.message_id, |m| apply_reaction(m, &r, &me));
    }

    /// Toggles my `emoji` on a message: shown at once, then sent (PUT to add, DELETE to take
    /// back); the server's event then sets the count everyone sees.
    pub(crate) fn toggle_reaction(self, room_id: String, message_id: String, emoji: String) {
        let mut add = true;
        self.logs.with_untracked(|logs| {
            if let Some(m) = logs
                .get(&room_id)
                .and_then(|l| l.msgs.iter().find(|m| m.msg.id == message_id))
            {
                add = !m.msg.reactions.iter().any(|c| c.emoji == emoji && c.mine);
            }
        });
        if let Some(t) = self.thread.get_untracked() {
            if let Some(m) = t.msgs.iter().find(|m| m.id == message_id) {
                add = !m.reactions.iter().any(|c| c.emoji == emoji && c.mine);
            }
        }
        let me = self.me.get_value();
        let guess = |m: &Message| {
            let count = m
                .reactions
                .iter()
                .find(|c| c.emoji == emoji)
                .map_or(0, |c| c.count);
            Reaction {
                room_id: room_id.clone().into(),
                message_id: message_id.clone().into(),
                emoji: emoji.clone(),
                user: me.author(),
                added: add,
                count: if add { count + 1 } else { (count - 1).max(0) },
            }
        };
        self.each_copy(&room_id, &message_id, |m| {
            let r = guess(m);
            apply_reaction(m, &r, &me.id);
        });
        let url = format!(
            "{}/reactions/{}",
            message_url(&room_id, &message_id),
            emoji_segment(&emoji)
        );
        leptos::task::spawn_local(async move {
            let method = if add { "PUT" } else { "DELETE" };
            if let Err(e) = api::send_empty(method, &url).await {
                self.notify(format!("The reaction did not go through. {}", e.message));
            }
        });
    }

    /// Saves an edit (the box closes at once; the new body shows when the server has it).
    pub(crate) fn save_edit(self, room_id: String, message_id: String, body: String) {
        self.editing.set(None);
        let url = message_url(&room_id, &message_id);
        leptos::task::spawn_local(async move {
            match api::patch::<_, Message>(&url, &EditMessage { body }).await {
                Ok(msg) => self.message_updated(msg),
                Err(e) => self.notify(format!("The edit was not saved. {}", e.message)),
            }
        });
    }

    /// Deletes a message (after the person confirmed): it stays as a tombstone.
    pub(crate) fn delete_message(self, room_id: String, message_id: String) {
        let url = message_url(&room_id, &message_id);
        leptos::task::spawn_local(async move {
            if let Err(e) = api::send_empty("DELETE", &url).await {
                self.notify(format!("The message was not deleted. {}", e.message));
            }
        });
    }

    /// My newest message in a room that can still be edited (for Up in an empty composer).
    pub(crate) fn my_last_message(&self, room_id: &str) -> Option<String> {
        let me = self.me_id();
        self.logs.with_untracked(|logs| {
            logs.get(room_id)?
                .msgs
                .iter()
                .rev()
                .find(|m| m.state == SendState::Sent && m.msg.author.id == me && !m.msg.deleted)
                .map(|m| m.msg.id.to_string())
        })
    }

    /// Opens a thread in the side panel and loads it.
    pub(crate) fn open_thread(self, room_id: String, root_id: String) {
        let root = self.logs.with_untracked(|logs| {
            logs.get(&room_id)
                .and_then(|l| l.msgs.iter().find(|m| m.msg.id == root_id))
                .map(|m| m.msg.clone())
        });
        self.thread.set(Some(ThreadState {
            room_id: room_id.clone(),
            root_id: root_id.clone(),
            msgs: root.into_iter().collect(),
            loaded: false,
        }));
        let url = format!("{}/thread", message_url(&room_id, &root_id));
        leptos::task::spawn_local(async move {
            match api::get::<Thread>(&url).await {
                Ok(thread) => self.thread.update(|t| {
                    if let Some(t) = t.as_mut().filter(|t| t.root_id == root_id) {
                        // Replies that arrived live while loading stay (the page may predate them).
                        let live: Vec<Message> = t
                            .msgs
                            .iter()
                            .skip(1)
                            .filter(|m| !thread.replies.iter().any(|r| r.id == m.id))
                            .cloned()
                            .collect();
                        t.msgs = std::iter::once(thread.root)
                            .chain(thread.replies)
                            .chain(live)
                            .collect();
                        t.loaded = true;
                    }
                }),
                Err(e) => {
                    self.thread.set(None);
                    self.notify(format!("The thread could not be opened. {}", e.message));
                }
            }
        });
    }

    /// Puts the divider where my unread messages start in a room being opened (or takes it away
    /// when nothing is unread). Called before the room is marked read.
    pub(crate) fn place_divider(&self, room_id: &str) {
        let unread = self.room_unread(room_id);
        let last_read = self.room_last_read(room_id);
        let me = self.me_id();
        let seq = self.logs.with_untracked(|logs| {
            logs.get(room_id)
                .and_then(|l| divider_seq(&l.msgs, last_read.as_deref(), unread, &me))
        });
        self.divider.update(|d| match seq {
            Some(s) => {
                d.insert(room_id.to_string(), s);
            }
            None => {
                d.remove(room_id);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::reply::EXCERPT_CHARS;
    use protocol::Author;

    fn msg(id: &str, author: &str, seq: i64) -> UiMessage {
        UiMessage {
            msg: Message {
                id: id.into(),
                room_id: "r".into(),
                author: Author {
                    id: author.into(),
                    username: author.into(),
                    display_name: None,
                },
                body: format!("body {id}"),
                client_id: format!("c{id}"),
                created_at: 0,
                seq,
                event_id: 0,
                edited_at: None,
                deleted: false,
                reply_to: None,
                reply_count: 0,
                reactions: Vec::new(),
                attachments: Vec::new(),
            },
            state: SendState::Sent,
        }
    }

    fn reaction(user: &str, added: bool, count: i64) -> Reaction {
        Reaction {
            room_id: "r".into(),
            message_id: "m".into(),
            emoji: "👍".into(),
            user: Author {
                id: user.into(),
                username: user.into(),
                display_name: None,
            },
            added,
            count,
        }
    }

    #[test]
    fn reactions_follow_the_server_count() {
        let mut m = msg("m", "bob", 1).msg;
        apply_reaction(&mut m, &reaction("alice", true, 1), "me");
        assert_eq!(m.reactions[0].count, 1);
        assert!(!m.reactions[0].mine);
        apply_reaction(&mut m, &reaction("me", true, 2), "me");
        assert!(m.reactions[0].mine);
        let names = |m: &Message| -> Vec<String> {
            m.reactions[0]
                .users
                .iter()
                .map(|u| u.username.clone())
                .collect()
        };
        assert_eq!(names(&m), vec!["alice", "me"]);
        // The same event twice (a resume): the same state.
        apply_reaction(&mut m, &reaction("me", true, 2), "me");
        assert_eq!(m.reactions[0].count, 2);
        assert_eq!(names(&m), vec!["alice", "me"]);
        apply_reaction(&mut m, &reaction("me", false, 1), "me");
        assert!(!m.reactions[0].mine);
        apply_reaction(&mut m, &reaction("alice", false, 0), "me");
        assert!(m.reactions.is_empty());
        apply_reaction(&mut m, &reaction("alice", false, 0), "me");
        assert!(m.reactions.is_empty());
    }

    #[test]
    fn an_update_keeps_what_only_i_know() {
        let mut held = msg("m", "bob", 7).msg;
        apply_reaction(&mut held, &reaction("me", true, 1), "me");
        let mut new = held.clone();
        new.body = "edited".into();
        new.edited_at = Some(5);
        new.seq = 0;
        new.reactions[0].mine = false;
        apply_update(&mut held, &new, "me");
        assert_eq!(held.body, "edited");
        assert_eq!(held.seq, 7);
        assert!(held.reactions[0].mine, "I am among those listed");
        new.reactions[0].users.clear();
        apply_update(&mut held, &new, "me");
        assert!(
            !held.reactions[0].mine,
            "the server lists everyone up to the cap"
        );
    }

    #[test]
    fn divider_above_the_first_unread_by_others() {
        let msgs = vec![
            msg("a", "bob", 1),
            msg("b", "bob", 2),
            msg("c", "me", 3),
            msg("d", "bob", 4),
        ];
        // At my read position, whatever the unread count says.
        assert_eq!(divider_seq(&msgs, Some("a"), 0, "me"), Some(2));
        assert_eq!(divider_seq(&msgs, Some("b"), 0, "me"), Some(4));
        assert_eq!(divider_seq(&msgs, Some("c"), 5, "me"), Some(4));
        assert_eq!(divider_seq(&msgs, Some("d"), 3, "me"), None);
        // Read up to something older than the loaded page: above the first loaded by others.
        assert_eq!(divider_seq(&msgs, Some("gone"), 9, "me"), Some(1));
        assert_eq!(divider_seq(&msgs, None, 2, "me"), Some(1));
        assert_eq!(divider_seq(&msgs, None, 0, "me"), None);
    }

    #[test]
    fn reply_excerpt_is_plain_and_short() {
        let mut m = msg("m", "bob", 1).msg;
        m.body = format!("**bold** {}", "x".repeat(300));
        let r = reply_ref(&m);
        assert!(r.excerpt.starts_with("bold xxx"));
        assert_eq!(r.excerpt.chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(emoji_segment("👍"), "%F0%9F%91%8D");
    }
}
