//! The WebSocket pump without a network: [`run`] driven through channels (the client's frames
//! in, what the pump writes out), on a composed server with a real store, and on paused time
//! where the pump's clocks are the point (heartbeat, silent peer, lag probe).

use super::*;
use crate::hub::{LiveEvent, HUB_CAPACITY};
use crate::testing::World;
use protocol::{FeedSet, Room, User};
use serde_json::{json, Value};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// The pump's end of a socket: frames the test sends come out of it, frames the pump writes go
/// to the test.
struct Socket {
    from_client: mpsc::UnboundedReceiver<Result<Message, axum::Error>>,
    to_client: mpsc::UnboundedSender<Message>,
}

impl Stream for Socket {
    type Item = Result<Message, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.from_client.poll_recv(cx)
    }
}

impl Sink<Message> for Socket {
    type Error = axum::Error;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<(), axum::Error> {
        self.to_client
            .send(msg)
            .map_err(|_| axum::Error::new("the client is gone"))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        Poll::Ready(Ok(()))
    }
}

/// The test's end of the socket.
struct Client {
    to_pump: Option<mpsc::UnboundedSender<Result<Message, axum::Error>>>,
    from_pump: mpsc::UnboundedReceiver<Message>,
}

impl Client {
    fn send(&self, frame: Value) {
        self.answer(Message::Text(frame.to_string().into()));
    }

    /// The next frame the pump wrote; None once it let go of the socket.
    async fn frame(&mut self) -> Option<Message> {
        self.from_pump.recv().await
    }

    /// The next event (text frame), answering pings (heartbeats and lag probes) on the way as
    /// a WebSocket library does.
    async fn event(&mut self) -> Value {
        loop {
            match self.frame().await {
                Some(Message::Text(text)) => return serde_json::from_str(&text).expect("JSON"),
                Some(Message::Ping(p)) => self.answer(Message::Pong(p)),
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    fn answer(&self, msg: Message) {
        let tx = self.to_pump.as_ref().expect("connected");
        tx.send(Ok(msg)).expect("the pump reads");
    }

    /// The close frame's code, skipping anything before it.
    async fn close_code(&mut self) -> u16 {
        loop {
            match self.frame().await {
                Some(Message::Close(Some(f))) => return f.code,
                Some(_) => continue,
                None => panic!("the socket ended without a close frame"),
            }
        }
    }

    /// Hangs up: the pump's reads end.
    fn hang_up(&mut self) {
        self.to_pump = None;
    }
}

/// `elapsed` (on paused time) is `due`: the timer wheel's millisecond ticks may add a few.
fn on_time(elapsed: Duration, due: Duration) {
    assert!(
        elapsed >= due && elapsed - due < Duration::from_millis(10),
        "{elapsed:?} for {due:?}"
    );
}

/// A server with `ann` in a room of her own.
async fn ann(tweak: impl FnOnce(&mut crate::config::Config)) -> (World, User, Room) {
    let world = World::new(tweak).await;
    let ann = world.user("ann").await;
    let room = chat::create_room(&world.state, &ann, "r", false)
        .await
        .expect("a room");
    (world, ann, room)
}

/// Opens `me`'s WebSocket session from `cursor` (not yet pumped: events committed from here on
/// are kept for it).
async fn open(world: &World, me: &User, cursor: Option<i64>) -> (SessionConfirm, LiveSession) {
    let watch = world.signed_in(me).await;
    let confirm = watch.confirmer();
    let session = LiveSession::open(
        &world.state,
        me,
        watch,
        Transport::Websocket,
        FeedSet::parse(Some("chat")).expect("feeds"),
        cursor,
        Carrier::Stream {
            reconnect: false,
            handshake_bytes: 0,
            heartbeat: HEARTBEAT,
        },
    )
    .await
    .expect("opened");
    (confirm, session)
}

/// Runs the pump over a channel socket; the task ends when the pump does.
fn pump(
    world: &World,
    me: &User,
    (confirm, session): (SessionConfirm, LiveSession),
) -> (Client, tokio::task::JoinHandle<()>) {
    let (to_pump, from_client) = mpsc::unbounded_channel();
    let (to_client, from_pump) = mpsc::unbounded_channel();
    let socket = Socket {
        from_client,
        to_client,
    };
    let task = tokio::spawn(run(
        socket,
        world.state.clone(),
        me.clone(),
        confirm,
        session,
    ));
    let client = Client {
        to_pump: Some(to_pump),
        from_pump,
    };
    (client, task)
}

#[tokio::test]
async fn hello_then_a_send_is_acknowledged_and_delivered() {
    let (world, ann, room) = ann(|_| {}).await;
    let opened = open(&world, &ann, None).await;
    let (mut client, task) = pump(&world, &ann, opened);
    let hello = client.event().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["data"]["cursor"], world.state.hub.head());
    assert_eq!(hello["data"]["transport"], "websocket");
    client.send(json!({"type": "send", "room_id": room.id, "body": "hi", "client_id": "c1"}));
    let (mut ack, mut message) = (None, None);
    while ack.is_none() || message.is_none() {
        let ev = client.event().await;
        match ev["type"].as_str() {
            Some("ack") => ack = Some(ev),
            Some("message") => message = Some(ev),
            other => panic!("unexpected {other:?}"),
        }
    }
    let (ack, message) = (ack.expect("ack"), message.expect("message"));
    assert_eq!(ack["data"]["client_id"], "c1");
    assert_eq!(message["data"]["body"], "hi");
    assert_eq!(message["id"], world.state.hub.head());
    // A wrong frame is answered, and the connection stays.
    client.send(json!({"type": "presence", "status": "asleep"}));
    assert_eq!(client.event().await["data"]["code"], "invalid_status");
    client.hang_up();
    task.await.expect("the pump ends when the client hangs up");
    assert!(client.frame().await.is_none());
}

#[tokio::test]
async fn a_pump_that_overflows_the_hub_delivers_every_event_once_in_order() {
    let (world, ann, room) = ann(|_| {}).await;
    let opened = open(&world, &ann, None).await;
    let from = world.state.hub.head();
    // Committed after the subscription opened and before the pump reads anything: more than
    // the hub buffers per subscriber, so the pump's subscription lags and reads the log.
    let n = HUB_CAPACITY + 300;
    let sends = (0..n).map(|i| {
        let (state, ann, room) = (&world.state, &ann, &room.id);
        async move {
            chat::send(state, ann, room, &format!("m{i}"), &format!("c{i}"))
                .await
                .expect("sent")
                .1
        }
    });
    assert!(futures_util::future::join_all(sends)
        .await
        .into_iter()
        .all(|new| new));
    let (mut client, task) = pump(&world, &ann, opened);
    assert_eq!(client.event().await["type"], "hello");
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n {
        let ev = client.event().await;
        assert_eq!(ev["type"], "message");
        ids.push(ev["id"].as_i64().expect("an id"));
    }
    assert_eq!(ids, (from + 1..=from + n as i64).collect::<Vec<_>>());
    client.hang_up();
    task.await.expect("ended");
    // Nothing came twice after the last one.
    while let Some(frame) = client.frame().await {
        assert!(!matches!(frame, Message::Text(_)), "{frame:?}");
    }
}

#[tokio::test]
async fn a_silent_peer_gets_heartbeats_then_is_dropped() {
    let (world, ann, _) = ann(|_| {}).await;
    let opened = open(&world, &ann, None).await;
    // From here on nothing waits for the database: time moves only when the pump waits.
    tokio::time::pause();
    let start = Instant::now();
    let (mut client, task) = pump(&world, &ann, opened);
    assert_eq!(client.event().await["type"], "hello");
    let mut pings = Vec::new();
    while let Some(frame) = client.frame().await {
        assert!(
            matches!(&frame, Message::Ping(p) if p.is_empty()),
            "{frame:?}"
        );
        pings.push(start.elapsed());
    }
    // A ping every HEARTBEAT; dropped (no close frame) at the first beat past PEER_TIMEOUT.
    assert_eq!(pings.len(), 2, "{pings:?}");
    on_time(pings[0], HEARTBEAT);
    on_time(pings[1], HEARTBEAT * 2);
    on_time(start.elapsed(), HEARTBEAT * 3);
    task.await.expect("ended");
}

#[tokio::test]
async fn a_client_that_does_not_answer_the_lag_probe_is_closed_as_slow() {
    let (world, ann, _) = ann(|_| {}).await;
    let opened = open(&world, &ann, None).await;
    tokio::time::pause();
    let (mut client, task) = pump(&world, &ann, opened);
    assert_eq!(client.event().await["type"], "hello");
    let typing = |n: u32| {
        let data = EventData::Typing(protocol::Typing {
            room_id: format!("r{n}").into(),
            user: protocol::Author {
                id: ann.id.clone(),
                username: ann.username.clone(),
                display_name: None,
            },
        });
        let ev = LiveEvent::ephemeral(Feed::Chat, &data, None, Some(ann.id.to_string()), 0);
        world.state.hub.publish_ephemeral_here(ev);
    };
    // An event goes out, then the probe: a ping with a payload of its own.
    typing(1);
    assert_eq!(client.event().await["data"]["room_id"], "r1");
    let probe = match client.frame().await {
        Some(Message::Ping(p)) => p,
        other => panic!("expected the probe, got {other:?}"),
    };
    assert_eq!(probe.len(), 8);
    // Answered: the connection goes on, and the next probe waits for PROBE_EVERY.
    client.answer(Message::Pong(probe));
    tokio::time::sleep(PROBE_EVERY).await;
    let sent = Instant::now();
    typing(2);
    assert_eq!(client.event().await["data"]["room_id"], "r2");
    assert!(matches!(client.frame().await, Some(Message::Ping(p)) if p.len() == 8));
    // Not answered: closed as a slow consumer once LAG_LIMIT has passed.
    assert_eq!(client.close_code().await, close::SLOW_CONSUMER);
    on_time(sent.elapsed(), LAG_LIMIT);
    // The closing handshake waits for the client's close, at most CLOSE_TIMEOUT.
    assert!(client.frame().await.is_none());
    on_time(sent.elapsed(), LAG_LIMIT + CLOSE_TIMEOUT);
    task.await.expect("ended");
}

#[tokio::test]
async fn shutdown_closes_with_going_away() {
    let (world, ann, _) = ann(|_| {}).await;
    let opened = open(&world, &ann, None).await;
    let (mut client, task) = pump(&world, &ann, opened);
    assert_eq!(client.event().await["type"], "hello");
    world.state.shutdown.cancel();
    assert_eq!(client.close_code().await, close::GOING_AWAY);
    client.hang_up();
    task.await.expect("ended");
}

#[tokio::test]
async fn typing_past_the_limit_is_dropped_unanswered_then_a_flood_is_closed() {
    let (world, ann, room) = ann(|c| {
        c.typing_per_user_per_minute = 2;
        c.flood_close_after = 3;
    })
    .await;
    let opened = open(&world, &ann, None).await;
    let (mut client, task) = pump(&world, &ann, opened);
    assert_eq!(client.event().await["type"], "hello");
    let typing = json!({"type": "typing", "room_id": room.id});
    // Within the limit: each goes out (ann sees her own typing), with no answer.
    for _ in 0..2 {
        client.send(typing.clone());
        assert_eq!(client.event().await["type"], "typing");
    }
    // Past it: three are dropped without an answer, and the fourth closes the socket.
    for _ in 0..4 {
        client.send(typing.clone());
    }
    let code = loop {
        match client.frame().await {
            Some(Message::Close(Some(f))) => break f.code,
            Some(Message::Ping(p)) if p.is_empty() => continue,
            other => panic!("nothing but the close, got {other:?}"),
        }
    };
    assert_eq!(code, close::POLICY);
    client.hang_up();
    task.await.expect("ended");
}
