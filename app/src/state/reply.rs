//! What a reply points at and the thread open beside the room: the shapes the room's state
//! (`chat`) holds and a message's life (`life`) fills, below both so neither reaches up.

use protocol::{Message, ReplyRef};

/// How many characters of the original a reply quotes before the server's excerpt arrives.
pub(crate) const EXCERPT_CHARS: usize = 120;

/// The thread open in the side panel: its root and replies, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThreadState {
    pub room_id: String,
    pub root_id: String,
    pub msgs: Vec<Message>,
    pub loaded: bool,
}

/// What the composer answers: the room, and the message quoted.
#[derive(Debug, Clone, PartialEq)]
pub struct Replying {
    pub room_id: String,
    pub to: ReplyRef,
}

/// A reply's quote of `msg`: its id, author, and the start of its text.
pub fn reply_ref(msg: &Message) -> ReplyRef {
    let text = crate::markdown::plain_text(&msg.body);
    let mut excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().count() > EXCERPT_CHARS {
        excerpt.push('…');
    }
    ReplyRef {
        id: msg.id.clone(),
        author: msg.author.clone(),
        excerpt,
        deleted: msg.deleted,
    }
}
