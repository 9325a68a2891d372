//! The rules every client and the server apply alike: limits, names, passwords, text,
//! mentions, and counting words.

/// Longest message body in characters, after trimming. Long enough for a pasted log excerpt,
/// short enough that one message can never dominate a frame or a poll answer.
pub const MAX_BODY_CHARS: usize = 4000;
/// Longest room name in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 80;
/// Longest room topic in characters: one line that fits a room's header on a phone in two or
/// three lines; longer descriptions belong in a pinned message.
pub const MAX_TOPIC_CHARS: usize = 250;
/// Display name length bounds in characters: long enough for a full name, short enough to fit
/// beside a message in a narrow timeline.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Longest client-generated id (idempotency key) in bytes; a UUID is 36.
pub const MAX_CLIENT_ID_LEN: usize = 64;
/// Most files one message carries.
pub const MAX_ATTACHMENTS: usize = 10;
/// Password length bounds: a floor for safety, a ceiling so hashing cost stays bounded.
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 256;
/// History page size: default and ceiling.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 100;
/// Longest reaction in bytes (UTF-8): room for a skin tone or a two-person ZWJ sequence, not
/// for a string of emoji.
pub const MAX_EMOJI_BYTES: usize = 16;
/// Different emoji one message can carry at most: a row of chips, not a wall.
pub const MAX_REACTION_EMOJI: i64 = 20;
/// Replies a thread answer lists at most.
pub const MAX_THREAD_REPLIES: u32 = 1000;

/// Checks a reaction: one emoji, 1 to [`MAX_EMOJI_BYTES`] bytes, made of emoji characters
/// (pictographs, symbols, dingbats, regional-indicator flags) with the marks that join or
/// shape them (zero-width joiner, variation selectors, skin tones, keycap). No letters,
/// spaces, punctuation or control characters; ASCII only as a keycap's `0`–`9`, `#`, `*`.
pub fn check_emoji(raw: &str) -> Result<&str, &'static str> {
    const RULE: &str =
        "A reaction is one emoji (at most 16 bytes): no letters, spaces or punctuation.";
    if raw.is_empty() || raw.len() > MAX_EMOJI_BYTES {
        return Err(RULE);
    }
    let keycap = raw.contains('\u{20E3}');
    let (mut pictures, mut joiners, mut flag_letters) = (0, 0, 0);
    for c in raw.chars() {
        match c as u32 {
            0x1F1E6..=0x1F1FF => flag_letters += 1,
            // Skin tones shape the picture before them.
            0x1F3FB..=0x1F3FF => {}
            0x200D => joiners += 1,
            _ if is_emoji_char(c) => pictures += 1,
            _ if is_emoji_mark(c) || (keycap && matches!(c, '0'..='9' | '#' | '*')) => {}
            _ => return Err(RULE),
        }
    }
    // One picture (several only when joined into one), or one flag (two letters), or a keycap.
    let one = match (pictures, flag_letters) {
        (0, 0) => keycap,
        (0, 2) => true,
        (n, 0) => n <= 1 + joiners,
        _ => false,
    };
    if one {
        Ok(raw)
    } else {
        Err(RULE)
    }
}

/// A character that is a picture on its own (the blocks emoji come from).
fn is_emoji_char(c: char) -> bool {
    matches!(c as u32,
        0xA9 | 0xAE | 0x203C | 0x2049 | 0x2122 | 0x2139
        | 0x2190..=0x21FF   // arrows
        | 0x2300..=0x23FF   // technical (⌚ ⏰)
        | 0x24C2 | 0x25A0..=0x25FF // Ⓜ, geometric shapes
        | 0x2600..=0x27BF   // miscellaneous symbols, dingbats
        | 0x2900..=0x297F | 0x2B00..=0x2BFF // arrows
        | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0x1F000..=0x1FAFF // mahjong to symbols and pictographs extended-A, flags' letters
    )
}

/// A mark that joins or shapes emoji: zero-width joiner, variation selectors, keycap, tags.
fn is_emoji_mark(c: char) -> bool {
    matches!(
        c as u32,
        0x200D | 0xFE0E | 0xFE0F | 0x20E3 | 0xE0020..=0xE007F
    )
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

/// Trims and checks a room name (creation and rename alike); returns the name to store.
pub fn check_room_name(raw: &str) -> Result<&str, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("A room needs a name.".into());
    }
    if name.chars().count() > MAX_ROOM_NAME_CHARS {
        return Err(format!(
            "Room names are at most {MAX_ROOM_NAME_CHARS} characters."
        ));
    }
    check_name(name).map_err(|e| e.message("Room names"))?;
    Ok(name)
}

/// Trims and checks a room topic; returns the topic to store ("" clears it). One line, like a
/// name, but it may be empty.
pub fn check_topic(raw: &str) -> Result<&str, String> {
    let topic = raw.trim();
    if topic.is_empty() {
        return Ok("");
    }
    if topic.chars().count() > MAX_TOPIC_CHARS {
        return Err(format!("Topics are at most {MAX_TOPIC_CHARS} characters."));
    }
    check_name(topic).map_err(|e| e.message("Topics"))?;
    Ok(topic)
}

/// Trims and checks a display name: 1 to 64 characters, one line, no text-direction controls.
pub fn check_display_name(raw: &str) -> Result<&str, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("Enter a display name.".into());
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(format!(
            "Display names are at most {MAX_DISPLAY_NAME_CHARS} characters."
        ));
    }
    check_name(name).map_err(|e| e.message("Display names"))?;
    Ok(name)
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
    fn reactions_are_one_emoji() {
        for ok in [
            "👍",
            "❤️",
            "🎉",
            "👍🏽",
            "👩‍💻",
            "🇫🇷",
            "1️⃣",
            "#️⃣",
            "✅",
            "☕",
            "🫠",
        ] {
            assert_eq!(check_emoji(ok), Ok(ok), "{ok:?}");
        }
        for bad in [
            "",
            "a",
            "ok",
            ":+1:",
            "👍 ",
            " 👍",
            "👍\n",
            "1",
            "#",
            "é",
            "日",
            "👍a",
            "\u{200D}",
            "\u{FE0F}",
            "<b>",
            "👍👍👍👍👍",
            "👍👍",
            "🇫🇷🇩🇪",
            "🇫",
        ] {
            assert!(check_emoji(bad).is_err(), "{bad:?}");
        }
    }

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
    fn room_names_topics_and_display_names_are_trimmed_and_checked() {
        assert_eq!(check_room_name("  lobby ").unwrap(), "lobby");
        assert!(check_room_name(" ").is_err());
        assert!(check_room_name(&"x".repeat(MAX_ROOM_NAME_CHARS + 1)).is_err());
        assert_eq!(check_topic("  ").unwrap(), "");
        assert_eq!(
            check_topic(" Plans for Friday ").unwrap(),
            "Plans for Friday"
        );
        assert!(check_topic(&"é".repeat(MAX_TOPIC_CHARS)).is_ok());
        assert!(check_topic(&"é".repeat(MAX_TOPIC_CHARS + 1)).is_err());
        assert!(check_topic("two\nlines").is_err());
        assert_eq!(check_display_name(" Ada L. ").unwrap(), "Ada L.");
        assert!(check_display_name("").is_err());
        assert!(check_display_name("\u{200B}").is_err());
        assert!(check_display_name("evil\u{202E}txt").is_err());
        assert!(check_display_name(&"a".repeat(MAX_DISPLAY_NAME_CHARS + 1)).is_err());
        assert!(check_display_name(&"a".repeat(MAX_DISPLAY_NAME_CHARS)).is_ok());
    }

    #[test]
    fn mentions_are_found_once_and_not_in_emails() {
        assert_eq!(
            mentions("hi @Bob and @carol. also @bob, mail x@bob.com"),
            vec!["bob", "carol"]
        );
        assert!(mentions("@x").is_empty());
    }
}
