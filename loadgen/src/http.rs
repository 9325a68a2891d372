//! A minimal HTTP/1.1 client over one kept-alive TCP connection: enough for the API's JSON
//! calls, polls and an SSE stream, with nothing between the load and the socket.

use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

pub struct Http {
    s: BufStream<TcpStream>,
}

impl Http {
    pub async fn connect(addr: SocketAddr) -> io::Result<Http> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(Http {
            // Small buffers: thousands of these are held open at once.
            s: BufStream::with_capacity(2048, 1024, tcp),
        })
    }

    /// Writes one request.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        extra: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<()> {
        // The Origin a page of the server sends: live routes refuse requests without one.
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\norigin: http://127.0.0.1\r\n");
        if let Some(c) = cookie {
            req.push_str("cookie: ");
            req.push_str(c);
            req.push_str("\r\n");
        }
        for (k, v) in extra {
            req.push_str(k);
            req.push_str(": ");
            req.push_str(v);
            req.push_str("\r\n");
        }
        if let Some(b) = body {
            req.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        self.s.write_all(req.as_bytes()).await?;
        if let Some(b) = body {
            self.s.write_all(b).await?;
        }
        self.s.flush().await
    }

    /// Reads a status line and headers.
    pub async fn head(&mut self) -> io::Result<(u16, Vec<(String, String)>)> {
        let mut line = String::new();
        if self.s.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("status line"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if self.s.read_line(&mut line).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Ok((status, headers))
    }

    /// Reads a whole body (Content-Length or chunked).
    pub async fn body(&mut self, headers: &[(String, String)]) -> io::Result<Vec<u8>> {
        if let Some(len) = header(headers, "content-length") {
            let len: usize = len.parse().map_err(|_| bad("content-length"))?;
            let mut body = vec![0; len];
            self.s.read_exact(&mut body).await?;
            return Ok(body);
        }
        if header(headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            while let Some(c) = self.chunk().await? {
                body.extend_from_slice(&c);
            }
            return Ok(body);
        }
        Ok(Vec::new())
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        extra: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<Resp> {
        self.send(method, path, cookie, extra, body).await?;
        let (status, headers) = self.head().await?;
        let body = self.body(&headers).await?;
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    /// The next chunk of a chunked body; None at its end.
    pub async fn chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut data = Vec::new();
        Ok(self.chunk_into(&mut data).await?.then_some(data))
    }

    /// Appends the next chunk of a chunked body to `out`; false at the body's end. (An SSE
    /// reader takes every event through here, so nothing is allocated per chunk.)
    pub async fn chunk_into(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        let mut line = [0u8; 32];
        let mut len = 0;
        // The size line: hex digits, maybe `;extensions`, CRLF.
        loop {
            let b = self.s.read_u8().await?;
            if b == b'\n' {
                break;
            }
            if len == line.len() {
                return Err(bad("chunk size line too long"));
            }
            line[len] = b;
            len += 1;
        }
        let text = std::str::from_utf8(&line[..len]).map_err(|_| bad("chunk size"))?;
        let size = usize::from_str_radix(text.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| bad("chunk size"))?;
        if size == 0 {
            let mut rest = String::new();
            self.s.read_line(&mut rest).await?;
            return Ok(false);
        }
        let start = out.len();
        out.resize(start + size, 0);
        self.s.read_exact(&mut out[start..]).await?;
        let mut crlf = [0u8; 2];
        self.s.read_exact(&mut crlf).await?;
        Ok(true)
    }
}
