//! Property-based tests and fuzzing (proptest) of the WebSocket client-frame parser and the
//! feed-list parser: any input is a value or an error, never a panic, and well-formed input
//! reads back as what was written. A normal `cargo test` runs [`DEFAULT_CASES`] cases per
//! property; `PROPTEST_CASES=200000 cargo test -p protocol --test frames` fuzzes longer.

use proptest::prelude::*;
use protocol::{ClientFrame, Feed, FeedSet};
use serde_json::{json, Value};

/// Cases per property in a normal test run.
const DEFAULT_CASES: u32 = 3000;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Keys a frame may leave out.
const OPTIONAL: &[&str] = &["reply_to", "attachments"];

fn frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (
            any::<String>(),
            any::<String>(),
            any::<String>(),
            any::<Option<String>>(),
            proptest::collection::vec(any::<String>(), 0..3)
        )
            .prop_map(|(room_id, body, client_id, reply_to, attachments)| {
                ClientFrame::Send {
                    room_id: room_id.into(),
                    body,
                    client_id,
                    reply_to: reply_to.map(Into::into),
                    attachments,
                }
            }),
        any::<String>().prop_map(|room_id| ClientFrame::Typing {
            room_id: room_id.into()
        }),
        any::<String>().prop_map(|status| ClientFrame::Presence { status }),
    ]
}

/// JSON that is nearly a frame: the right keys with wrong types, extra or missing keys,
/// unknown types, nesting, duplicates.
fn frame_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("type"),
        Just("room_id"),
        Just("body"),
        Just("client_id"),
        Just("status"),
        Just("extra"),
    ];
    let value = prop_oneof![
        Just(json!("send")),
        Just(json!("typing")),
        Just(json!("presence")),
        Just(json!("SEND")),
        Just(Value::Null),
        Just(json!(1)),
        Just(json!(-1.5e300)),
        Just(json!([])),
        Just(json!({"type": "send"})),
        Just(json!(true)),
        any::<String>().prop_map(Value::from),
    ];
    prop::collection::vec((key, value), 0..7).prop_map(|pairs| {
        // Written by hand so that duplicate keys survive.
        let fields: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}:{}", json!(k), v))
            .collect();
        format!("{{{}}}", fields.join(","))
    })
}

/// Bytes as a WebSocket text frame carries them (always UTF-8; tungstenite refuses others).
fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(config())]

    /// Fuzz: any text is a frame or an error, never a panic; a frame it gives prints back to
    /// JSON that parses to the same frame.
    #[test]
    fn any_text_is_a_frame_or_an_error(
        text in prop_oneof![
            any::<String>(),
            any::<Vec<u8>>().prop_map(lossy),
            frame_like(),
            "[\\[\\]{}\",:0-9a-z ]{0,64}",
        ],
    ) {
        match ClientFrame::parse(&text) {
            Ok(f) => {
                let again = ClientFrame::parse(&serde_json::to_string(&f).expect("json"));
                prop_assert_eq!(again.expect("re-reads"), f);
            }
            Err(e) => prop_assert!(e.to_string().starts_with("unreadable frame")),
        }
    }

    /// Every frame a client can send reads back as itself, whatever its strings hold.
    #[test]
    fn frames_round_trip(f in frame()) {
        let text = serde_json::to_string(&f).expect("json");
        prop_assert_eq!(ClientFrame::parse(&text).expect("valid frame"), f);
    }

    /// A frame with a field it does not take, or without one it needs, is refused.
    #[test]
    fn unknown_and_missing_fields_are_refused(f in frame(), extra in "[a-z_]{1,12}") {
        let mut v = serde_json::to_value(&f).expect("json");
        let obj = v.as_object_mut().expect("object");
        if !obj.contains_key(&extra) {
            let mut with_extra = obj.clone();
            with_extra.insert(extra.clone(), json!(1));
            prop_assert!(ClientFrame::parse(&Value::Object(with_extra).to_string()).is_err());
        }
        // Every key but the type and the ones a frame may leave out.
        let needed: Vec<String> = obj
            .keys()
            .filter(|k| *k != "type" && !OPTIONAL.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in needed {
            let mut without = obj.clone();
            without.remove(&k);
            prop_assert!(ClientFrame::parse(&Value::Object(without).to_string()).is_err(), "without {}", k);
        }
    }

    /// Feed lists: any text is a set (always with `control`) or an error, never a panic; a
    /// list of names reads back as those feeds.
    #[test]
    fn feed_lists_parse_or_refuse(
        s in prop_oneof![any::<String>(), "[a-z, ]{0,40}"],
        feeds in prop::collection::vec(prop::sample::select(Feed::ALL.to_vec()), 1..6),
    ) {
        if let Ok(set) = FeedSet::parse(Some(&s)) {
            prop_assert!(set.contains(Feed::Control));
        }
        let names: Vec<&str> = feeds.iter().map(|f| f.as_str()).collect();
        let set = FeedSet::parse(Some(&names.join(","))).expect("valid list");
        for f in Feed::ALL {
            prop_assert_eq!(set.contains(f), f == Feed::Control || feeds.contains(&f));
        }
    }
}
