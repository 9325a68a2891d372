//! Uploads: files stored in the database, in chunks, so every server of a cluster serves them.
//! A body streams in chunk by chunk (never whole in memory twice: an image is kept once, to
//! make its thumbnail), is refused past the size limit or a user's quotas with nothing kept,
//! and streams out chunk by chunk to its uploader and to the members of a room whose message
//! carries it. Images are recognised by their bytes, not by what the upload claims.

use super::parse_id;
use crate::clock::{new_id, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{FinishedUpload, UploadRecord};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use protocol::{User, MAX_ATTACHMENTS};
use std::time::Duration;

/// Size of one stored chunk: large enough that a 10 MiB file is 40 rows, small enough that a
/// download holds little in memory at a time.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Largest image (width × height) a thumbnail is made of: its pixels alone take 160 MB as
/// RGBA. Checked from the header, before anything is decoded (a "decompression bomb" is a tiny
/// file that claims huge dimensions).
pub const MAX_IMAGE_PIXELS: u64 = 40_000_000;
/// Longer side of a thumbnail, in pixels.
pub const THUMBNAIL_MAX: u32 = 320;
/// Longest file name kept, in characters.
const MAX_NAME_CHARS: usize = 200;
/// The day a user's byte quota counts over.
const DAY_MS: i64 = 86_400_000;

/// The ids a message may carry: at most [`MAX_ATTACHMENTS`], each a valid id, none twice (400
/// `invalid_attachments`). Whether each is `me`'s and carried by no other message yet is
/// checked in the send's transaction (a retry of the same send still finds its message).
pub async fn check_attachments(
    _state: &AppState,
    _me: &User,
    ids: &[String],
) -> ApiResult<Vec<String>> {
    if ids.len() > MAX_ATTACHMENTS {
        return Err(ApiError::bad(
            "invalid_attachments",
            format!("A message carries at most {MAX_ATTACHMENTS} files."),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for raw in ids {
        let id: String = parse_id(raw, "upload")
            .map_err(|_| ApiError::bad("invalid_attachments", "An attachment id is not valid."))?;
        if out.contains(&id) {
            return Err(ApiError::bad(
                "invalid_attachments",
                "The same file is attached twice.",
            ));
        }
        out.push(id);
    }
    Ok(out)
}

/// The name a file is kept under: its last path component, without control characters, at most
/// [`MAX_NAME_CHARS`]; "file" when nothing is left.
pub fn clean_name(raw: Option<&str>) -> String {
    let raw = raw.unwrap_or("");
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let name: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." {
        "file".into()
    } else {
        name.to_string()
    }
}

/// The type an upload claims, as a bare lowercase `type/subtype` (no parameters); anything
/// malformed is `application/octet-stream`.
pub fn claimed_type(header: Option<&str>) -> String {
    let essence = header
        .and_then(|h| h.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let valid = essence.split_once('/').is_some_and(|(a, b)| {
        let token = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
        };
        token(a) && token(b)
    });
    if valid {
        essence
    } else {
        "application/octet-stream".into()
    }
}

/// The image format the bytes start with, of those served inline.
pub fn sniff(head: &[u8]) -> Option<image::ImageFormat> {
    use image::ImageFormat as F;
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(F::Png)
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(F::Jpeg)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(F::Gif)
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(F::WebP)
    } else {
        None
    }
}

fn mime_of(format: image::ImageFormat) -> &'static str {
    format.to_mime_type()
}

/// The stored type: an image's own type when its bytes are one; a claim of an inline image
/// type that the bytes do not bear out becomes `application/octet-stream`; anything else stays
/// as claimed (it is served as an attachment).
fn stored_type(claimed: &str, sniffed: Option<image::ImageFormat>) -> String {
    match sniffed {
        Some(f) => mime_of(f).to_string(),
        None if protocol::is_inline_image(claimed) => "application/octet-stream".into(),
        None => claimed.to_string(),
    }
}

/// What an image gives: its size after EXIF orientation and a thumbnail.
struct ImageFacts {
    width: u32,
    height: u32,
    thumbnail: (Vec<u8>, String),
}

enum ImageRefusal {
    /// Too many pixels (width, height as the header says).
    TooLarge(u32, u32),
    /// Not a decodable image after all.
    Broken,
}

/// Reads the header for the dimensions (refusing a bomb before decoding anything), then
/// decodes within limits, applies the EXIF orientation and makes the thumbnail. The thumbnail
/// is encoded afresh, so no metadata of the original travels with it.
fn image_facts(bytes: &[u8], format: image::ImageFormat) -> Result<ImageFacts, ImageRefusal> {
    use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
    use std::io::Cursor;
    // The header only: no pixel is decoded, nothing sized by the claimed dimensions allocated.
    let mut header = ImageReader::with_format(Cursor::new(bytes), format);
    header.no_limits();
    let (w, h) = header.into_dimensions().map_err(|_| ImageRefusal::Broken)?;
    if u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
        return Err(ImageRefusal::TooLarge(w, h));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(w.max(1));
    limits.max_image_height = Some(h.max(1));
    limits.max_alloc = Some(MAX_IMAGE_PIXELS * 4 * 2);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|_| ImageRefusal::Broken)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|_| ImageRefusal::Broken)?;
    img.apply_orientation(orientation);
    // Never larger than the picture: a small image is its own thumbnail (re-encoded all the
    // same, so its metadata goes).
    let thumb = if img.width() <= THUMBNAIL_MAX && img.height() <= THUMBNAIL_MAX {
        img.clone()
    } else {
        img.thumbnail(THUMBNAIL_MAX, THUMBNAIL_MAX)
    };
    let mut out = Cursor::new(Vec::new());
    let thumb_type = if format == image::ImageFormat::Jpeg {
        DynamicImage::ImageRgb8(thumb.to_rgb8())
            .write_to(&mut out, image::ImageFormat::Jpeg)
            .map_err(|_| ImageRefusal::Broken)?;
        "image/jpeg"
    } else {
        DynamicImage::ImageRgba8(thumb.to_rgba8())
            .write_to(&mut out, image::ImageFormat::Png)
            .map_err(|_| ImageRefusal::Broken)?;
        "image/png"
    };
    Ok(ImageFacts {
        width: img.width(),
        height: img.height(),
        thumbnail: (out.into_inner(), thumb_type.to_string()),
    })
}

fn human_bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

fn too_large(max: u64) -> ApiError {
    let human = human_bytes(max);
    let exact = if human == format!("{max} bytes") {
        String::new()
    } else {
        format!(" ({max} bytes)")
    };
    ApiError::TooLarge(format!("Files are at most {human}{exact}."))
}

/// Receives one upload of `me`'s: `length` is the declared Content-Length, if any; `body` the
/// bytes as they arrive. Nothing is kept when it is refused (413 past the size limit, 429 past
/// a quota, 413 for an image of too many pixels).
pub async fn receive<S, E>(
    state: &AppState,
    me: &User,
    name: Option<&str>,
    content_type: Option<&str>,
    length: Option<u64>,
    body: S,
) -> ApiResult<protocol::Upload>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let max = state.config.upload_max_bytes;
    if length.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let per_minute = state.config.uploads_per_user_per_minute;
    super::per_minute(state, "upload", &me.id, per_minute).map_err(|_| {
        ApiError::Quota(format!(
            "You can upload at most {per_minute} files a minute. Wait a moment and try again."
        ))
    })?;
    let per_day = state.config.upload_bytes_per_user_per_day;
    let used = if per_day > 0 {
        let used = state
            .store
            .uploaded_bytes_since(&me.id, now_ms() - DAY_MS)
            .await?
            .max(0) as u64;
        if used >= per_day || length.is_some_and(|n| used + n > per_day) {
            return Err(day_quota(per_day));
        }
        used
    } else {
        0
    };
    let name = clean_name(name);
    let claimed = claimed_type(content_type);
    let id = new_id();
    state
        .store
        .create_upload(&id, &me.id, &name, &claimed, None, now_ms())
        .await?;
    let limits = Quotas { max, per_day, used };
    match stream_in(state, &id, &claimed, limits, body).await {
        Ok(done) => {
            state.store.finish_upload(&id, &done).await?;
            Ok(protocol::Upload {
                url: format!("/api/uploads/{id}"),
                id,
                name,
                size: done.size,
                content_type: done.content_type,
                width: done.width,
                height: done.height,
            })
        }
        Err(e) => {
            if let Err(gone) = state.store.delete_upload(&id).await {
                // The orphan sweep removes it later.
                tracing::warn!(error = %gone, upload = %id, "removing a refused upload");
            }
            Err(e)
        }
    }
}

fn day_quota(per_day: u64) -> ApiError {
    ApiError::Quota(format!(
        "You can upload at most {} a day. Try again tomorrow.",
        human_bytes(per_day)
    ))
}

#[derive(Clone, Copy)]
struct Quotas {
    max: u64,
    per_day: u64,
    used: u64,
}

/// Stores the body's chunks as they come; returns what to finish the upload with.
async fn stream_in<S, E>(
    state: &AppState,
    id: &str,
    claimed: &str,
    q: Quotas,
    mut body: S,
) -> ApiResult<FinishedUpload>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
    let mut total: u64 = 0;
    let mut n: i64 = 0;
    // Set when the first chunk is seen: an image is kept (once) to make its thumbnail.
    let mut sniffed: Option<Option<image::ImageFormat>> = None;
    let mut image_bytes: Vec<u8> = Vec::new();
    let mut ended = false;
    while !ended {
        match body.next().await {
            Some(Ok(bytes)) => {
                total += bytes.len() as u64;
                if total > q.max {
                    return Err(too_large(q.max));
                }
                if q.per_day > 0 && q.used + total > q.per_day {
                    return Err(day_quota(q.per_day));
                }
                buf.extend_from_slice(&bytes);
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, upload = id, "upload body cut off");
                return Err(ApiError::bad(
                    "upload_incomplete",
                    "The upload was cut off before its end.",
                ));
            }
            None => ended = true,
        }
        while buf.len() >= CHUNK_BYTES || (ended && !buf.is_empty()) {
            let take = buf.len().min(CHUNK_BYTES);
            let format = *sniffed.get_or_insert_with(|| sniff(&buf));
            if format.is_some() {
                image_bytes.extend_from_slice(&buf[..take]);
            }
            state.store.put_upload_chunk(id, n, &buf[..take]).await?;
            buf.drain(..take);
            n += 1;
        }
    }
    let format = sniffed.flatten();
    let mut done = FinishedUpload {
        size: total as i64,
        content_type: stored_type(claimed, format),
        width: None,
        height: None,
        thumbnail: None,
    };
    if let Some(format) = format {
        let facts = tokio::task::spawn_blocking(move || image_facts(&image_bytes, format))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        match facts {
            Ok(facts) => {
                done.width = Some(i64::from(facts.width));
                done.height = Some(i64::from(facts.height));
                done.thumbnail = Some(facts.thumbnail);
            }
            Err(ImageRefusal::TooLarge(w, h)) => {
                return Err(ApiError::TooLarge(format!(
                    "Images are at most {} megapixels; this one is {w} × {h}.",
                    MAX_IMAGE_PIXELS / 1_000_000
                )));
            }
            // Looks like an image but is not one: kept, as a file to download.
            Err(ImageRefusal::Broken) => done.content_type = "application/octet-stream".into(),
        }
    }
    Ok(done)
}

/// A file written by the server itself (a room export), chunk by chunk as it is made, never
/// whole in memory: [`ServerFile::write`] as the bytes come, then [`ServerFile::finish`]; on
/// any failure [`ServerFile::discard`] removes what was written.
pub struct ServerFile {
    state: AppState,
    pub id: String,
    buf: Vec<u8>,
    n: i64,
    size: i64,
    content_type: String,
}

impl ServerFile {
    /// A new, not yet complete upload of `owner_id`'s, the result of job `job_id`.
    pub async fn create(
        state: &AppState,
        owner_id: &str,
        job_id: &str,
        name: &str,
        content_type: &str,
    ) -> crate::store::StoreResult<ServerFile> {
        let id = new_id();
        state
            .store
            .create_upload(&id, owner_id, name, content_type, Some(job_id), now_ms())
            .await?;
        Ok(ServerFile {
            state: state.clone(),
            id,
            buf: Vec::with_capacity(CHUNK_BYTES),
            n: 0,
            size: 0,
            content_type: content_type.to_string(),
        })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> crate::store::StoreResult<()> {
        self.buf.extend_from_slice(bytes);
        self.size += bytes.len() as i64;
        while self.buf.len() >= CHUNK_BYTES {
            self.flush(CHUNK_BYTES).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, take: usize) -> crate::store::StoreResult<()> {
        self.state
            .store
            .put_upload_chunk(&self.id, self.n, &self.buf[..take])
            .await?;
        self.buf.drain(..take);
        self.n += 1;
        Ok(())
    }

    /// Stores the rest and makes the file complete (servable).
    pub async fn finish(mut self) -> crate::store::StoreResult<String> {
        if !self.buf.is_empty() {
            self.flush(self.buf.len()).await?;
        }
        let done = FinishedUpload {
            size: self.size,
            content_type: self.content_type.clone(),
            width: None,
            height: None,
            thumbnail: None,
        };
        self.state.store.finish_upload(&self.id, &done).await?;
        Ok(self.id)
    }

    /// Removes the file and whatever of it was written.
    pub async fn discard(state: &AppState, id: &str) {
        if let Err(e) = state.store.delete_upload(id).await {
            tracing::warn!(error = %e, upload = id, "a partial file was not removed");
        }
    }
}

/// An upload `me` may fetch (404 for everyone else, and for a malformed id).
pub async fn find(state: &AppState, me: &User, id: &str) -> ApiResult<UploadRecord> {
    let id: String = parse_id(id, "upload").map_err(|_| ApiError::NotFound("upload"))?;
    state
        .store
        .upload_for(&id, &me.id)
        .await?
        .ok_or(ApiError::NotFound("upload"))
}

/// The bytes of an upload, chunk by chunk, in order (read one at a time as the response is
/// written).
pub fn chunks(
    state: &AppState,
    id: String,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let store = state.store.clone();
    futures_util::stream::unfold(Some(0i64), move |next| {
        let (store, id) = (store.clone(), id.clone());
        async move {
            let n = next?;
            match store.upload_chunk(&id, n).await {
                Ok(Some(bytes)) => Some((Ok(Bytes::from(bytes)), Some(n + 1))),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    })
}

/// An image upload's thumbnail and its type (404 when it has none).
pub async fn thumbnail(state: &AppState, me: &User, id: &str) -> ApiResult<(Vec<u8>, String)> {
    let record = find(state, me, id).await?;
    state
        .store
        .upload_thumbnail(&record.upload.id)
        .await?
        .ok_or(ApiError::NotFound("thumbnail"))
}

/// Removes the uploads no message took within `--upload-orphan-secs`, every
/// `--upload-sweep-ms` (on every server of a cluster: the delete is the same from any).
pub async fn sweep_orphans(state: AppState) {
    let every = Duration::from_millis(state.config.upload_sweep_ms.max(10));
    let age_ms = (state.config.upload_orphan_secs.saturating_mul(1000)).min(i64::MAX as u64) as i64;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match state
            .store
            .delete_orphan_uploads(now_ms().saturating_sub(age_ms))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed uploads no message took"),
            Err(e) => tracing::warn!(error = %e, "removing orphan uploads"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_name(Some("C:\\x\\report.pdf")), "report.pdf");
        assert_eq!(clean_name(Some("a\u{0}b\nc.txt")), "abc.txt");
        assert_eq!(clean_name(Some("..")), "file");
        assert_eq!(clean_name(None), "file");
    }

    #[test]
    fn claimed_types_are_bare_and_checked() {
        assert_eq!(claimed_type(Some("Image/PNG; x=y")), "image/png");
        assert_eq!(claimed_type(Some("text/html")), "text/html");
        assert_eq!(claimed_type(Some("nonsense")), "application/octet-stream");
        assert_eq!(claimed_type(None), "application/octet-stream");
    }

    #[test]
    fn a_thumbnail_is_never_larger_than_its_picture() {
        let mut png = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(64, 40, image::Rgb([1, 2, 3]))
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        let Ok(facts) = image_facts(png.get_ref(), image::ImageFormat::Png) else {
            panic!("a small PNG has a thumbnail");
        };
        let thumb = image::load_from_memory(&facts.thumbnail.0).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (64, 40));
    }

    #[test]
    fn a_false_image_claim_is_stored_as_bytes() {
        assert_eq!(stored_type("image/png", None), "application/octet-stream");
        assert_eq!(
            stored_type("application/octet-stream", Some(image::ImageFormat::Png)),
            "image/png"
        );
        assert_eq!(stored_type("image/svg+xml", None), "image/svg+xml");
    }
}
