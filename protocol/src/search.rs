//! Search (`GET /api/search`): the query and answer shapes, the parser that turns what a person
//! typed into terms (never passed raw to a database's query language), and the reader of a
//! snippet's `<<`/`>>` marks that the browser renders.

use crate::ids::{MessageId, RoomId, UserId};
use crate::model::Message;
use serde::{Deserialize, Serialize};

/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// At most this many terms (words and phrases) are searched for; more only slow the database.
pub const MAX_TERMS: usize = 16;
/// Results per page by default, and at most.
pub const DEFAULT_SEARCH_PAGE: u32 = 20;
pub const MAX_SEARCH_PAGE: u32 = 50;
/// A prefix shorter than this is searched as a whole word: `a*` would match most of the index.
pub const MIN_PREFIX_CHARS: usize = 2;
/// The marks around a match in a snippet.
pub const MARK_START: &str = "<<";
pub const MARK_END: &str = ">>";

/// `GET /api/search?q=&room_id=&from=&before=&limit=`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub q: String,
    pub room_id: Option<RoomId>,
    /// Only messages written by this person.
    pub from: Option<UserId>,
    /// Paging: only messages older than this one (the last result of the previous page).
    pub before: Option<MessageId>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SearchHit {
    pub message: Message,
    /// Part of the body with each match between `<<` and `>>` (plain text, never HTML).
    pub snippet: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SearchResults {
    pub results: Vec<SearchHit>,
}

/// One thing to find: every term must match (AND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A word; with `prefix`, any word starting with it.
    Word { word: String, prefix: bool },
    /// Words next to each other in this order; with `prefix`, the last one is a prefix.
    Phrase { words: Vec<String>, prefix: bool },
}

/// Why a query cannot be searched for (each a 400 with this code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    Empty,
    TooLong,
    NoWords,
}

impl QueryError {
    pub fn code(self) -> &'static str {
        match self {
            QueryError::Empty => "empty_query",
            QueryError::TooLong => "query_too_long",
            QueryError::NoWords => "no_words",
        }
    }

    pub fn message(self) -> String {
        match self {
            QueryError::Empty => "Type something to search for.".into(),
            QueryError::TooLong => {
                format!("A search can be at most {MAX_QUERY_CHARS} characters long.")
            }
            QueryError::NoWords => "Search for at least one word or number.".into(),
        }
    }
}

/// Splits a query into terms the way the databases split bodies into words: runs of letters and
/// digits (lowercased); everything else separates. `"…"` makes a phrase (an unclosed quote runs
/// to the end); a `*` right after a word makes it a prefix. Operators a person might type
/// (`AND`, `OR`, `NOT`, `NEAR`, `col:`) are just words here: nothing typed reaches the database
/// as syntax.
pub fn parse_query(q: &str) -> Result<Vec<Term>, QueryError> {
    if q.trim().is_empty() {
        return Err(QueryError::Empty);
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong);
    }
    let mut terms = Vec::new();
    let mut in_phrase = false;
    let mut phrase: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = q.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        // A `*` right after a word (outside a phrase) makes it a prefix; anywhere else it is
        // a separator like any other punctuation.
        let w = std::mem::take(&mut word).to_lowercase();
        if !w.is_empty() {
            if in_phrase {
                phrase.push(w);
            } else {
                let prefix = c == '*' && w.chars().count() >= MIN_PREFIX_CHARS;
                terms.push(Term::Word { word: w, prefix });
            }
        }
        if c == '"' {
            if in_phrase {
                let star = chars.peek() == Some(&'*');
                if star {
                    chars.next();
                }
                push_phrase(&mut terms, std::mem::take(&mut phrase), star);
            }
            in_phrase = !in_phrase;
        }
    }
    let w = word.to_lowercase();
    if !w.is_empty() {
        if in_phrase {
            phrase.push(w);
        } else {
            terms.push(Term::Word {
                word: w,
                prefix: false,
            });
        }
    }
    if in_phrase {
        push_phrase(&mut terms, phrase, false);
    }
    if terms.is_empty() {
        return Err(QueryError::NoWords);
    }
    terms.truncate(MAX_TERMS);
    Ok(terms)
}

fn push_phrase(terms: &mut Vec<Term>, mut words: Vec<String>, prefix: bool) {
    match words.len() {
        0 => {}
        1 => {
            let word = words.remove(0);
            let prefix = prefix && word.chars().count() >= MIN_PREFIX_CHARS;
            terms.push(Term::Word { word, prefix });
        }
        _ => {
            let prefix = prefix
                && words
                    .last()
                    .is_some_and(|w| w.chars().count() >= MIN_PREFIX_CHARS);
            terms.push(Term::Phrase { words, prefix });
        }
    }
}

/// A snippet as pieces: (is a match, text). Unbalanced marks are read as plain text.
pub fn snippet_parts(snippet: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let mut rest = snippet;
    while let Some(start) = rest.find(MARK_START) {
        let after = &rest[start + MARK_START.len()..];
        let Some(end) = after.find(MARK_END) else {
            break;
        };
        if start > 0 {
            out.push((false, &rest[..start]));
        }
        out.push((true, &after[..end]));
        rest = &after[end + MARK_END.len()..];
    }
    if !rest.is_empty() {
        out.push((false, rest));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(word: &str, prefix: bool) -> Term {
        Term::Word {
            word: word.into(),
            prefix,
        }
    }

    #[test]
    fn words_prefixes_and_phrases() {
        assert_eq!(
            parse_query("Hello wor* \"big red\" dog").unwrap(),
            vec![
                w("hello", false),
                w("wor", true),
                Term::Phrase {
                    words: vec!["big".into(), "red".into()],
                    prefix: false
                },
                w("dog", false)
            ]
        );
        assert_eq!(
            parse_query("\"big re\"*").unwrap(),
            vec![Term::Phrase {
                words: vec!["big".into(), "re".into()],
                prefix: true
            }]
        );
    }

    #[test]
    fn hostile_input_is_words_or_an_error() {
        assert_eq!(parse_query(""), Err(QueryError::Empty));
        assert_eq!(parse_query("   "), Err(QueryError::Empty));
        assert_eq!(parse_query("*"), Err(QueryError::NoWords));
        assert_eq!(parse_query("\"\"\"!?"), Err(QueryError::NoWords));
        assert_eq!(parse_query(&"a".repeat(201)), Err(QueryError::TooLong));
        assert_eq!(parse_query("a*").unwrap(), vec![w("a", false)]);
        assert_eq!(
            parse_query("NEAR(a b) body:x").unwrap(),
            vec![
                w("near", false),
                w("a", false),
                w("b", false),
                w("body", false),
                w("x", false)
            ]
        );
        assert_eq!(
            parse_query("\"unclosed phrase").unwrap(),
            vec![Term::Phrase {
                words: vec!["unclosed".into(), "phrase".into()],
                prefix: false
            }]
        );
        assert_eq!(parse_query(&"x ".repeat(40)).unwrap().len(), MAX_TERMS);
    }

    #[test]
    fn snippets_split_at_marks() {
        assert_eq!(
            snippet_parts("a <<b>> c <<d"),
            vec![(false, "a "), (true, "b"), (false, " c <<d")]
        );
        assert_eq!(snippet_parts("<<x>>"), vec![(true, "x")]);
    }
}
