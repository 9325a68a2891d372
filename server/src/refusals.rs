//! JSON bodies for the requests hyper refuses itself. A request line it cannot read, more than
//! 100 header fields, a URI over 64 KiB or a head larger than its read buffer is answered by
//! hyper before any of our code runs, with a 400, 431 or 414 and an empty body. Every other
//! refusal of ours is the JSON error of API.md, so this wrapper around the connection spots
//! those automatic answers as hyper writes them and writes the JSON error in their place.
//!
//! Why at the byte level: hyper has no hook for these answers, and raising its limits instead
//! would let a request of 100+ headers reach our code only at the price of hyper keeping every
//! request's header array on the heap (its `max_headers` note); the head-size and URI limits
//! cannot be raised at all. An automatic answer is recognised by its shape: a whole head with
//! `content-length: 0` and without the header every answer of ours carries
//! (`x-content-type-options`, set by `security::headers` and by the early refusals of `error`).
//! Checking costs a comparison of the first bytes of each write, and a scan of the head only
//! for a bodiless 400, 414 or 431.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose automatic parse-error answers are rewritten as JSON errors.
pub struct JsonRefusals<S> {
    inner: S,
    /// Our answer, and how much of it is written, once hyper's has been replaced.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> JsonRefusals<S> {
    pub fn new(inner: S) -> Self {
        JsonRefusals {
            inner,
            pending: None,
        }
    }
}

/// If `head` is one of hyper's automatic answers, the JSON answer to write instead.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let (status, code, message) = if head.starts_with(b"HTTP/1.1 400 ") {
        (
            "400 Bad Request",
            "bad_request",
            "The request could not be read: its request line or a header is malformed.".to_string(),
        )
    } else if head.starts_with(b"HTTP/1.1 431 ") {
        (
            "431 Request Header Fields Too Large",
            "headers_too_large",
            format!(
                "The request's headers are too large (at most {} headers and {} KiB).",
                crate::error::MAX_HEADERS,
                crate::error::MAX_HEADER_BYTES / 1024
            ),
        )
    } else if head.starts_with(b"HTTP/1.1 414 ") {
        (
            "414 URI Too Long",
            "uri_too_long",
            format!(
                "The address is too long (at most {} bytes).",
                crate::error::MAX_URI_BYTES
            ),
        )
    } else {
        return None;
    };
    // A whole head that announces no body, without the header every answer of ours has.
    if !head.ends_with(b"\r\n\r\n")
        || !contains(head, b"\r\ncontent-length: 0\r\n")
        || contains(head, b"x-content-type-options")
    {
        return None;
    }
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    Some(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             x-content-type-options: nosniff\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl<S: AsyncWrite + Unpin> JsonRefusals<S> {
    /// Writes what is left of our replacement answer.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.pending {
            if *done == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `buf` in place of hyper's answer if it is one: our answer is queued and `buf`
    /// counts as written.
    fn intercept(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Option<Poll<io::Result<usize>>> {
        if !buf.starts_with(b"HTTP/1.1 4") {
            return None;
        }
        let ours = replacement(buf)?;
        self.pending = Some((ours, 0));
        Some(match self.drive(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // What is left is written on the flush or shutdown hyper does next.
            _ => Poll::Ready(Ok(buf.len())),
        })
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonRefusals<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonRefusals<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.drive(cx))?;
        if let Some(done) = this.intercept(cx, buf) {
            return done;
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.drive(cx))?;
        if let Some(first) = bufs.first() {
            if let Some(done) = this.intercept(cx, first) {
                return done;
            }
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.drive(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.drive(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_s_bodiless_answers_are_replaced() {
        let hypers = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 19:00:00 GMT\r\n\r\n";
        let ours = String::from_utf8(replacement(hypers).unwrap()).unwrap();
        assert!(ours.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(ours.contains("content-type: application/json"));
        assert!(ours.ends_with(r#""code":"bad_request","message":"The request could not be read: its request line or a header is malformed."}}"#));
        let too_many = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert!(String::from_utf8(replacement(too_many).unwrap())
            .unwrap()
            .contains("headers_too_large"));
        let long = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        assert!(String::from_utf8(replacement(long).unwrap())
            .unwrap()
            .contains("uri_too_long"));
        // Our own answers carry nosniff; other statuses and partial heads are left alone.
        let own = b"HTTP/1.1 400 Bad Request\r\nx-content-type-options: nosniff\r\ncontent-length: 2\r\n\r\n";
        assert!(replacement(own).is_none());
        assert!(replacement(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n").is_none());
        // The head of an answer with a body (written apart from its body) is left alone too.
        let with_body = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 90\r\n\r\n";
        assert!(replacement(with_body).is_none());
    }
}
