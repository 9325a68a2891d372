//! Property-based tests and fuzzing (proptest) of the pure encoders and parsers of the live
//! transports: the event JSON encoder, the SSE frame encoder (read back by a WHATWG-conformant
//! SSE parser written here), the cursor parser, and the live endpoints' query parsers. No
//! server needed. A normal `cargo test` runs [`DEFAULT_CASES`] cases per property (a few
//! seconds); `PROPTEST_CASES=200000 cargo test -p server --test it fuzz` runs a longer fuzz
//! (see docs/TESTING.md).

use proptest::prelude::*;
use protocol::{Event, Feed, FeedSet};
use serde_json::Value;
use server::hub::encode;
use server::hub::event::frame;
use server::live::params::parse_cursor;
use server::live::params::{poll_params, stream_params};

/// Cases per property in a normal test run.
const DEFAULT_CASES: u32 = 2000;

fn config() -> ProptestConfig {
    config_divided(1)
}

/// For the properties whose cases are large (whole JSON documents): `1/divisor` as many.
fn config_divided(divisor: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases: (cases / divisor).max(1),
        ..ProptestConfig::default()
    }
}

/// One event as an EventSource dispatches it.
#[derive(Debug, Clone, PartialEq)]
struct Dispatched {
    event: String,
    data: String,
    last_event_id: String,
}

/// A Server-Sent Events parser following the WHATWG HTML standard, §9.2.6 "Interpreting an
/// event stream", written independently of the server's encoder: lines end with CRLF, LF or
/// CR; a blank line dispatches; `:` starts a comment; a field's value loses one leading space;
/// `data` lines are joined with LF; an `id` containing NUL is ignored; `retry` takes only
/// digits; an event without data is not dispatched; an unterminated last event is dropped.
fn parse_sse(stream: &str) -> (Vec<Dispatched>, Option<u64>) {
    let stream = stream.strip_prefix('\u{feff}').unwrap_or(stream);
    let mut out = Vec::new();
    let (mut data, mut event, mut last_id, mut retry) =
        (String::new(), String::new(), String::new(), None);
    let mut lines = Vec::new();
    let mut rest = stream;
    // Only complete lines count: text after the last line break is an unfinished line.
    while let Some(i) = rest.find(['\r', '\n']) {
        lines.push(&rest[..i]);
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    for line in lines {
        if line.is_empty() {
            if data.is_empty() {
                event.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            out.push(Dispatched {
                event: if event.is_empty() {
                    "message".into()
                } else {
                    std::mem::take(&mut event)
                },
                data: std::mem::take(&mut data),
                last_event_id: last_id.clone(),
            });
            event.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        match field {
            "event" => event = value.to_string(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => last_id = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                retry = value.parse().ok()
            }
            _ => {}
        }
    }
    (out, retry)
}

/// What an SSE reader gets back for `data`: its line breaks as LF.
fn normalized(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

fn feed() -> impl Strategy<Value = Feed> {
    prop::sample::select(Feed::ALL.to_vec())
}

/// Text rich in what could break SSE framing: line breaks, colons, field names, NUL, BOM.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\r\n".to_string()),
        Just("\n\n".to_string()),
        Just(":".to_string()),
        Just("id: 999".to_string()),
        Just("event: evil".to_string()),
        Just("data: x".to_string()),
        Just("retry: 1".to_string()),
        Just("\0".to_string()),
        Just("\u{feff}".to_string()),
        Just(" ".to_string()),
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        hostile_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(hostile_text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the data, a frame is exactly one event for an SSE reader, with the id, the
    /// event name and the data it was given: no `id:`/`event:` injection, no early end.
    #[test]
    fn sse_frames_round_trip_through_a_whatwg_parser(
        id in prop::option::of(0i64..=i64::MAX),
        feed in feed(),
        data in hostile_text(),
        previous_id in prop::option::of(0i64..=i64::MAX),
    ) {
        // A stream as the server writes it: the retry hint, maybe an earlier event, the frame.
        let mut stream = String::from("retry: 2000\n\n");
        if let Some(p) = previous_id {
            stream.push_str(&frame(Some(p), "chat", "{}"));
        }
        stream.push_str(": heartbeat\n\n");
        stream.push_str(&frame(id, feed.as_str(), &data));
        let (events, retry) = parse_sse(&stream);
        prop_assert_eq!(retry, Some(2000));
        let ours = events.last().expect("the frame dispatches");
        prop_assert_eq!(events.len(), 1 + usize::from(previous_id.is_some()));
        prop_assert_eq!(&ours.event, feed.as_str());
        prop_assert_eq!(&ours.data, &normalized(&data));
        // An event without `id:` keeps the last id, so ephemerals never move Last-Event-ID.
        let expected_id = id.or(previous_id).map(|i| i.to_string()).unwrap_or_default();
        prop_assert_eq!(&ours.last_event_id, &expected_id);
        // And the id a browser sends back as Last-Event-ID is the cursor it came from.
        if let Some(id) = id {
            prop_assert_eq!(parse_cursor(Some(&ours.last_event_id)).unwrap(), Some(id));
        }
    }

    /// Cursors: every non-negative id reads back as itself (spaces around it allowed); its
    /// negative is refused.
    #[test]
    fn cursors_round_trip(c in 0i64..=i64::MAX) {
        prop_assert_eq!(parse_cursor(Some(&c.to_string())).unwrap(), Some(c));
        let spaced = format!(" {c} ");
        prop_assert_eq!(parse_cursor(Some(&spaced)).unwrap(), Some(c));
        let negative = format!("-{}", c.max(1));
        prop_assert!(parse_cursor(Some(&negative)).is_err());
    }

    /// Any text as a cursor: an error or a non-negative cursor that prints back the same way.
    #[test]
    fn any_text_as_a_cursor_is_an_answer_never_a_panic(s in any::<String>()) {
        match parse_cursor(Some(&s)) {
            Ok(Some(c)) => {
                prop_assert!(c >= 0);
                prop_assert_eq!(parse_cursor(Some(&c.to_string())).unwrap(), Some(c));
            }
            Ok(None) => prop_assert!(s.trim().is_empty()),
            Err(e) => prop_assert_eq!(e.code(), "invalid_cursor"),
        }
    }

    /// Fuzz: any query string (raw, or bytes percent-encoded) gets parameters or a 400 with
    /// one of the documented codes, never a panic; whatever is accepted is within bounds.
    #[test]
    fn any_query_string_is_parsed_or_refused(
        raw in prop_oneof![any::<String>(), query_soup(), any::<Vec<u8>>().prop_map(percent_encode)],
        last_event_id in prop::option::of(any::<String>()),
    ) {
        const CODES: [&str; 4] = ["invalid_query", "invalid_cursor", "invalid_feeds", "invalid_wait"];
        match poll_params(Some(&raw)) {
            Ok(p) => {
                prop_assert!(p.wait <= 30);
                prop_assert!(p.cursor.is_none_or(|c| c >= 0));
                prop_assert!(p.feeds.contains(Feed::Control));
            }
            Err(e) => {
                prop_assert!(CODES.contains(&e.code()), "{}", e.code());
                prop_assert_eq!(e.status().as_u16(), 400);
            }
        }
        match stream_params(Some(&raw), last_event_id.as_deref()) {
            Ok(p) => {
                prop_assert!(p.cursor.is_none_or(|c| c >= 0));
                prop_assert!(p.feeds.contains(Feed::Control));
            }
            Err(e) => prop_assert!(CODES.contains(&e.code()), "{}", e.code()),
        }
    }

    /// Well-formed parameters read back as what was written.
    #[test]
    fn poll_parameters_round_trip(
        feeds in prop::collection::vec(feed(), 1..5),
        cursor in prop::option::of(0i64..=i64::MAX),
        wait in 0u64..=30,
        eph in prop::option::of(any::<u64>()),
        reconnect in any::<bool>(),
    ) {
        let names: Vec<&str> = feeds.iter().map(|f| f.as_str()).collect();
        let mut q = format!("feeds={}&wait={wait}", names.join("%2C"));
        if let Some(c) = cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        if let Some(e) = eph {
            q.push_str(&format!("&eph={e}"));
        }
        if reconnect {
            q.push_str("&reconnect=1");
        }
        let p = poll_params(Some(&q)).expect("valid query");
        let mut expected: FeedSet = feeds.iter().copied().collect();
        expected.insert(Feed::Control);
        prop_assert_eq!(p.feeds, expected);
        prop_assert_eq!((p.cursor, p.wait, p.eph, p.reconnect), (cursor, wait, eph, reconnect));
        let s = stream_params(Some(&q), None).expect("valid query");
        prop_assert_eq!((s.feeds, s.cursor, s.reconnect), (expected, cursor, reconnect));
    }
}

proptest! {
    #![proptest_config(config_divided(4))]

    /// Stored events in a row, as one connection sends them: all of them, in order, intact.
    #[test]
    fn an_sse_stream_of_encoded_events_reads_back_in_order(
        events in prop::collection::vec(
            (prop::option::of(0i64..1_000_000), feed(), hostile_text(), json_value(), any::<i64>()),
            0..5,
        ),
    ) {
        let mut stream = String::from("retry: 2000\n\n");
        let mut sent = Vec::new();
        for (id, feed, kind, data, ts) in &events {
            let json = encode(*id, *feed, kind, &data.to_string(), *ts);
            stream.push_str(&frame(*id, feed.as_str(), &json));
            sent.push(json);
        }
        let (got, _) = parse_sse(&stream);
        prop_assert_eq!(got.len(), sent.len());
        for (g, json) in got.iter().zip(&sent) {
            prop_assert_eq!(&g.data, json);
            let ev: Event = serde_json::from_str(&g.data).expect("event json");
            prop_assert_eq!(g.event.as_str(), ev.feed.as_str());
        }
    }

    /// The event encoder writes one line of JSON that reads back as exactly its inputs.
    #[test]
    fn encoded_events_are_one_json_line_with_their_fields(
        id in prop::option::of(any::<i64>()),
        feed in feed(),
        kind in hostile_text(),
        data in json_value(),
        ts in any::<i64>(),
    ) {
        let json = encode(id, feed, &kind, &data.to_string(), ts);
        prop_assert!(!json.contains(['\n', '\r']), "one line: {json:?}");
        let ev: Event = serde_json::from_str(&json).expect("valid event JSON");
        prop_assert_eq!(ev.id, id);
        prop_assert_eq!(ev.feed, feed);
        prop_assert_eq!(&ev.kind, &kind);
        // Compared with the data read by the same JSON parser (serde_json's default float
        // parsing may differ from the original by one ulp either way; that is not the encoder).
        let reread: Value = serde_json::from_str(&data.to_string()).expect("json");
        prop_assert_eq!(&ev.data, &reread);
        prop_assert_eq!(ev.ts, ts);
    }
}

/// Query strings made of the parameters' names and values that are almost right.
fn query_soup() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("feeds"),
        Just("cursor"),
        Just("wait"),
        Just("eph"),
        Just("reconnect"),
        Just("transport"),
        Just("after"),
        Just(""),
    ];
    let value = prop_oneof![
        Just("chat,notifications".to_string()),
        Just("chat,,jobs".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        Just("9223372036854775807".to_string()),
        Just("1e3".to_string()),
        Just("%FF%FE".to_string()),
        Just("%".to_string()),
        Just("%G1".to_string()),
        Just("+5".to_string()),
        Just("30".to_string()),
        Just("31".to_string()),
        any::<String>(),
    ];
    let sep = prop_oneof![Just("&"), Just(";"), Just("&&"), Just("=")];
    prop::collection::vec((key, prop::option::of(value), sep), 0..6).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(k, v, sep)| match v {
                Some(v) => format!("{k}={v}{sep}"),
                None => format!("{k}{sep}"),
            })
            .collect()
    })
}

fn percent_encode(bytes: Vec<u8>) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'=' | b'&' | b',' => {
                (*b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn the_sse_parser_here_follows_the_standard() {
    // The examples of WHATWG HTML §9.2.6, so the properties above rest on a faithful reader.
    let (ev, _) = parse_sse("data: YHOO\ndata: +2\ndata: 10\n\n");
    assert_eq!(ev[0].data, "YHOO\n+2\n10");
    assert_eq!(ev[0].event, "message");
    let (ev, _) = parse_sse(": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n");
    let got: Vec<(&str, &str)> = ev
        .iter()
        .map(|e| (e.data.as_str(), e.last_event_id.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("first event", "1"),
            ("second event", ""),
            (" third event", "")
        ]
    );
    let (ev, _) = parse_sse("data\n\ndata\ndata\n\ndata:");
    let got: Vec<&str> = ev.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(got, ["", "\n"], "an unterminated event is dropped");
    let (ev, retry) = parse_sse("retry: 1x\r\nevent: a\rdata: b\r\n\r\n");
    assert_eq!(
        (retry, ev[0].event.as_str(), ev[0].data.as_str()),
        (None, "a", "b")
    );
}
