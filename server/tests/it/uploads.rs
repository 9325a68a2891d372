//! Attachments: uploads stored in the database, their limits and quotas, how each type is
//! served, who may fetch them, thumbnails (size, EXIF orientation), decompression bombs, the
//! messages that carry them (HTTP, WebSocket, history, events), and orphan cleanup.

use crate::common::{Client, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// A PNG of `w` × `h` pixels.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A JPEG of `w` × `h` pixels whose EXIF says "rotate 90° clockwise to show" (orientation 6).
fn jpeg_rotated(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, _| image::Rgb([(x % 256) as u8, 10, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    let jpeg = out.into_inner();
    // APP1 "Exif": a little-endian TIFF header and one IFD entry, Orientation (0x0112) = 6.
    let mut tiff = b"Exif\0\0II\x2a\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&[1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
    let mut out = vec![0xff, 0xd8, 0xff, 0xe1];
    out.extend_from_slice(&((tiff.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A tiny PNG whose header claims `w` × `h` pixels (a decompression bomb's shape).
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    // A zlib stream of a few zero bytes; the rest of the claimed image never comes.
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

async fn uploaded(c: &Client, name: &str, ty: &str, bytes: Vec<u8>) -> Value {
    let (status, up) = c.upload(name, ty, bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    up
}

async fn send_with(c: &Client, room: &str, body: &str, files: &[&Value]) -> (StatusCode, Value) {
    let ids: Vec<&Value> = files.iter().map(|f| &f["id"]).collect();
    c.post(
        &format!("/api/rooms/{room}/messages"),
        json!({"body": body, "client_id": uuid::Uuid::new_v4().to_string(), "attachments": ids}),
    )
    .await
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn files_are_served_by_type_images_inline_everything_else_as_attachments() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;

    let picture = png(1000, 500);
    let up = uploaded(&alice, "cat.png", "image/png", picture.clone()).await;
    assert_eq!(up["content_type"], "image/png");
    assert_eq!(up["size"], picture.len());
    assert_eq!(
        (up["width"].as_i64(), up["height"].as_i64()),
        (Some(1000), Some(500))
    );
    assert_eq!(
        up["url"],
        format!("/api/uploads/{}", up["id"].as_str().unwrap())
    );
    let r = alice.get_response(up["url"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "image/png");
    assert!(
        header(&r, "content-disposition").starts_with("inline"),
        "{r:?}"
    );
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    assert!(header(&r, "content-security-policy").contains("sandbox"));
    assert!(header(&r, "cache-control").contains("private"));
    assert_eq!(
        r.bytes().await.unwrap().to_vec(),
        picture,
        "the same bytes back"
    );

    // The thumbnail: at most 320 px on the longer side, the shape kept.
    let r = alice
        .get_response(&format!("{}/thumbnail", up["url"].as_str().unwrap()))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "image/png");
    let thumb = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (320, 160));

    // SVG and HTML are files to download, never shown inline, never sniffed.
    for (name, ty, body) in [
        (
            "x.svg",
            "image/svg+xml",
            "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        ),
        ("x.html", "text/html", "<script>alert(1)</script>"),
    ] {
        let up = uploaded(&alice, name, ty, body.as_bytes().to_vec()).await;
        assert_eq!(up["content_type"], ty);
        assert!(up.get("width").is_none(), "{up}");
        let r = alice.get_response(up["url"].as_str().unwrap()).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), ty);
        assert!(
            header(&r, "content-disposition").starts_with("attachment"),
            "{r:?}"
        );
        assert_eq!(header(&r, "x-content-type-options"), "nosniff");
        let csp = header(&r, "content-security-policy");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("sandbox"),
            "{csp}"
        );
        let r = alice
            .get_response(&format!("{}/thumbnail", up["url"].as_str().unwrap()))
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "no thumbnail of {name}");
    }

    // Claiming to be a PNG does not make it one.
    let up = uploaded(
        &alice,
        "fake.png",
        "image/png",
        b"not a picture at all".to_vec(),
    )
    .await;
    assert_eq!(up["content_type"], "application/octet-stream");
    let r = alice.get_response(up["url"].as_str().unwrap()).await;
    assert!(header(&r, "content-disposition").starts_with("attachment"));

    // A PNG claimed as anything is a PNG; the name loses its path.
    let up = uploaded(
        &alice,
        "../../etc/pic",
        "application/octet-stream",
        png(10, 10),
    )
    .await;
    assert_eq!(up["content_type"], "image/png");
    assert_eq!(up["name"], "pic");
}

#[tokio::test]
async fn thumbnails_apply_the_exif_orientation() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let up = uploaded(&alice, "photo.jpg", "image/jpeg", jpeg_rotated(400, 200)).await;
    assert_eq!(up["content_type"], "image/jpeg");
    // Shown upright, the photo is 200 wide and 400 high.
    assert_eq!(
        (up["width"].as_i64(), up["height"].as_i64()),
        (Some(200), Some(400)),
        "{up}"
    );
    let r = alice
        .get_response(&format!("{}/thumbnail", up["url"].as_str().unwrap()))
        .await;
    assert_eq!(header(&r, "content-type"), "image/jpeg");
    let thumb = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (160, 320));
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_from_its_header() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bomb = png_claiming(100_000, 100_000);
    assert!(bomb.len() < 200);
    let (status, err) = alice.upload("bomb.png", "image/png", bomb).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("40 megapixels") && message.contains("100000"),
        "{message}"
    );
}

#[tokio::test]
async fn size_limit_rate_and_daily_quota_say_their_limits() {
    let app = TestApp::spawn_configured(|c| {
        c.upload_max_bytes = 1000;
        c.uploads_per_user_per_minute = 3;
        c.upload_bytes_per_user_per_day = 1500;
    })
    .await;
    let alice = app.client();
    alice.signup("alice").await;

    // Too large, declared up front or found while streaming: 413 naming the limit.
    let (status, err) = alice
        .upload("big.bin", "application/octet-stream", vec![7; 1001])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    assert_eq!(err["error"]["code"], "too_large");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("1000"),
        "{err}"
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(vec![1; 600]), Ok(vec![2; 600])];
    let r = alice
        .http
        .post(alice.url("/api/uploads?name=streamed.bin"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // The day's bytes: 800 fit, 800 more do not.
    uploaded(&alice, "a.bin", "application/octet-stream", vec![1; 800]).await;
    let (status, err) = alice
        .upload("b.bin", "application/octet-stream", vec![1; 800])
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{err}");
    assert_eq!(err["error"]["code"], "rate_limited");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1500 bytes a day"),
        "{err}"
    );

    // Files a minute: three counted (the first was refused by its declared length before
    // anything began); the fourth is refused.
    let (status, err) = alice.upload("c.bin", "text/plain", b"hi".to_vec()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 files a minute"),
        "{err}"
    );
}

#[tokio::test]
async fn only_the_uploader_and_members_where_it_was_sent_may_fetch_it() {
    let app = TestApp::spawn().await;
    let (alice, bob, eve) = (app.client(), app.client(), app.client());
    alice.signup("alice").await;
    bob.signup("bob").await;
    eve.signup("eve").await;
    let room = alice.create_room("files", false).await;
    let file = uploaded(&alice, "notes.txt", "text/plain", b"secret plans".to_vec()).await;
    let pic = uploaded(&alice, "p.png", "image/png", png(20, 10)).await;
    let url = file["url"].as_str().unwrap().to_string();
    let thumb = format!("{}/thumbnail", pic["url"].as_str().unwrap());

    // Not sent yet: the uploader only.
    assert_eq!(alice.get_response(&url).await.status(), StatusCode::OK);
    assert_eq!(bob.get_response(&url).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        bob.get_response(&thumb).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.client().get_response(&url).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        bob.get_response("/api/uploads/not-an-id").await.status(),
        StatusCode::NOT_FOUND
    );

    // Someone else's file cannot be attached.
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;
    let (status, err) = send_with(&bob, &room, "mine now", &[&file]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["code"], "invalid_attachments");

    // Sent with an empty body: the message carries both, in order.
    let (status, m) = send_with(&alice, &room, "", &[&file, &pic]).await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    assert_eq!(m["body"], "");
    let names: Vec<&str> = m["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["notes.txt", "p.png"]);
    assert_eq!(m["attachments"][1]["width"], 20);
    // Once only: another message cannot carry it too.
    let (status, err) = send_with(&alice, &room, "again", &[&file]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["code"], "invalid_attachments");

    // Members now may; a stranger still may not.
    let r = bob.get_response(&url).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "secret plans");
    assert_eq!(bob.get_response(&thumb).await.status(), StatusCode::OK);
    assert_eq!(eve.get_response(&url).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        eve.get_response(&thumb).await.status(),
        StatusCode::NOT_FOUND
    );

    // History carries the files.
    let (_, page) = bob.get(&format!("/api/rooms/{room}/messages")).await;
    let last = page["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["id"], m["id"]);
    assert_eq!(last["attachments"].as_array().unwrap().len(), 2);

    // Deleted: the tombstone carries nothing, and members lose access; the uploader keeps it.
    let (status, _) = alice
        .delete(&format!(
            "/api/rooms/{room}/messages/{}",
            m["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, page) = bob.get(&format!("/api/rooms/{room}/messages")).await;
    let last = page["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["deleted"], true);
    assert_eq!(last["attachments"], json!([]));
    assert_eq!(bob.get_response(&url).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(alice.get_response(&url).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn attachments_go_over_the_websocket_and_in_events() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.client(), app.client());
    alice.signup("alice").await;
    bob.signup("bob").await;
    let room = alice.create_room("r", false).await;
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;
    let mut a = alice.ws("?feeds=chat").await;
    let mut b = bob.ws("?feeds=chat").await;
    a.hello().await;
    b.hello().await;
    let pic = uploaded(&alice, "p.png", "image/png", png(30, 30)).await;

    let frame = json!({"type": "send", "room_id": room, "body": "", "client_id": "w1",
                       "attachments": [pic["id"]]});
    a.send_json(frame.clone()).await;
    let ack = a.next_of("ack").await;
    assert_eq!(ack.data["message"]["attachments"][0]["id"], pic["id"]);
    let ev = b.next_of("message").await;
    assert_eq!(ev.data["attachments"][0]["id"], pic["id"]);
    assert_eq!(ev.data["attachments"][0]["content_type"], "image/png");
    // A retry of the same send finds the first message, files and all.
    a.send_json(frame).await;
    let again = a.next_of("ack").await;
    assert_eq!(again.data["message"]["id"], ack.data["message"]["id"]);
    assert_eq!(again.data["message"]["attachments"][0]["id"], pic["id"]);

    // Too many files, or a malformed id: an error for that send.
    let ids: Vec<String> = (0..11).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    a.send_json(
        json!({"type": "send", "room_id": room, "body": "x", "client_id": "w2",
                       "attachments": ids}),
    )
    .await;
    let err = a.next_of("error").await;
    assert_eq!(err.data["client_id"], "w2");
    assert_eq!(err.data["code"], "invalid_attachments");
    a.send_json(
        json!({"type": "send", "room_id": room, "body": "", "client_id": "w3",
                       "attachments": ["nope"]}),
    )
    .await;
    assert_eq!(a.next_of("error").await.data["code"], "invalid_attachments");
    // Without files a body is still needed.
    a.send_json(json!({"type": "send", "room_id": room, "body": " ", "client_id": "w4"}))
        .await;
    assert_eq!(a.next_of("error").await.data["code"], "invalid_body");
}

#[tokio::test]
async fn an_upload_no_message_took_is_removed() {
    let app = TestApp::spawn_configured(|c| {
        c.upload_orphan_secs = 2;
        c.upload_sweep_ms = 50;
    })
    .await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("r", false).await;
    let kept = uploaded(&alice, "kept.txt", "text/plain", b"kept".to_vec()).await;
    let (status, m) = send_with(&alice, &room, "here", &[&kept]).await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    // A room export is stored as a file of its owner's, never an orphan.
    let (status, job) = alice
        .post("/api/jobs", json!({"kind": "export_room", "room_id": room}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    let end = crate::notifications::wait_job(&alice, &job_id).await;
    assert_eq!(end["state"], "done", "{end}");
    let export_url = end["result_url"].as_str().unwrap().to_string();
    assert!(export_url.starts_with("/api/uploads/"), "{export_url}");
    let lost = uploaded(&alice, "lost.txt", "text/plain", b"lost".to_vec()).await;
    let lost_url = lost["url"].as_str().unwrap();
    assert_eq!(alice.get_response(lost_url).await.status(), StatusCode::OK);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while alice.get_response(lost_url).await.status() != StatusCode::NOT_FOUND {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the orphan was never removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        alice
            .get_response(kept["url"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK,
        "a sent file stays"
    );
    let r = alice.get_response(&export_url).await;
    assert_eq!(r.status(), StatusCode::OK, "the export stays");
    assert!(header(&r, "content-disposition").starts_with("attachment"));
    assert_eq!(header(&r, "content-type"), "application/json");
    let export: Value = r.json().await.unwrap();
    assert_eq!(export["messages"][0]["body"], "here");
    // The job's own result route serves the same file; nobody else gets either.
    let r = alice
        .get_response(&format!("/api/jobs/{job_id}/result"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let bob = app.client();
    bob.signup("bob").await;
    assert_eq!(
        bob.get_response(&export_url).await.status(),
        StatusCode::NOT_FOUND
    );

    // And it can no longer be attached.
    let (status, _) = send_with(&alice, &room, "late", &[&lost]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
