//! The TCP connection under the HTTP/1.1 server, so that every error the
//! service answers is `application/problem+json` (RFC 9457), including the
//! ones the HTTP layer sends before any handler runs: a request head that
//! does not parse (bytes not allowed in a header, a bad `Content-Length`,
//! `Content-Length` with `Transfer-Encoding`) gets actix-http's bodyless
//! `400`, a head over its limit a bodyless `431`, and these cannot be
//! configured. [`ProblemIo`] follows the messages in both directions (heads,
//! then bodies by `Content-Length` or chunked framing; responses to `HEAD`
//! and `1xx`/`204`/`304` have none) and replaces a bodyless 4xx response
//! head with the same head carrying a problem document.
//!
//! Must never: change a response that has a body or a content type, buffer
//! more than one response head, or guess: once either direction stops
//! parsing as HTTP/1.1 framing, it passes every byte through unchanged.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest head followed; a longer one is passed through untouched. It is
/// actix-http's own limit (`MAX_BUFFER_SIZE` in actix-http 3.20.0's
/// `h1/decoder.rs`, pinned in Cargo.toml): every head the server parses is
/// followed here, and one it refuses ends the connection anyway.
const MAX_HEAD: usize = 131_072;
/// More headers than actix-http takes (96 in the same file), so that a head
/// it answers with 431 still parses here and gets its problem body.
const MAX_HEADERS: usize = 128;

/// Where a message stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// Between messages, or inside a head (its bytes are buffered).
    Head,
    /// Inside a body of this many more bytes.
    Fixed(u64),
    Chunked(Chunk),
    /// Not HTTP/1.1 as this module follows it: pass everything through.
    Lost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// The chunk-size line: the size so far, and whether an extension began.
    Size {
        size: u64,
        digits: bool,
        ext: bool,
    },
    SizeLf {
        size: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// Trailer lines; `len` bytes of the current one so far.
    Trailer {
        len: usize,
        cr: bool,
    },
}

impl Frame {
    /// Follows `bytes` of a body; returns how many belong to the current
    /// message (then the frame is `Head` again, or `Lost` on bad framing).
    fn advance(&mut self, bytes: &[u8]) -> usize {
        let mut i = 0;
        while i < bytes.len() {
            match *self {
                Frame::Head => return i,
                Frame::Lost => return bytes.len(),
                Frame::Fixed(n) => {
                    let take = n.min((bytes.len() - i) as u64);
                    i += take as usize;
                    *self = if take == n {
                        Frame::Head
                    } else {
                        Frame::Fixed(n - take)
                    };
                }
                Frame::Chunked(Chunk::Data(n)) => {
                    let take = n.min((bytes.len() - i) as u64);
                    i += take as usize;
                    *self = Frame::Chunked(if take == n {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(n - take)
                    });
                }
                Frame::Chunked(c) => {
                    *self = chunk_byte(c, bytes[i]);
                    i += 1;
                }
            }
        }
        i
    }
}

/// One framing byte of a chunked body (RFC 9112 §7.1).
fn chunk_byte(c: Chunk, b: u8) -> Frame {
    let next = match (c, b) {
        (
            Chunk::Size {
                ext: true, size, ..
            },
            b'\r',
        ) => Chunk::SizeLf { size },
        (Chunk::Size { ext: true, .. }, _) => c,
        (Chunk::Size { size, .. }, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
            let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
            match size.checked_mul(16).and_then(|s| s.checked_add(digit)) {
                Some(size) => Chunk::Size {
                    size,
                    digits: true,
                    ext: false,
                },
                None => return Frame::Lost,
            }
        }
        (
            Chunk::Size {
                size, digits: true, ..
            },
            b';' | b' ' | b'\t',
        ) => Chunk::Size {
            size,
            digits: true,
            ext: true,
        },
        (
            Chunk::Size {
                size, digits: true, ..
            },
            b'\r',
        ) => Chunk::SizeLf { size },
        (Chunk::SizeLf { size: 0 }, b'\n') => Chunk::Trailer { len: 0, cr: false },
        (Chunk::SizeLf { size }, b'\n') => Chunk::Data(size),
        (Chunk::DataCr, b'\r') => Chunk::DataLf,
        (Chunk::DataLf, b'\n') => Chunk::Size {
            size: 0,
            digits: false,
            ext: false,
        },
        (Chunk::Trailer { len, cr: false }, b'\r') => Chunk::Trailer { len, cr: true },
        (Chunk::Trailer { len: 0, cr: true }, b'\n') => return Frame::Head,
        (Chunk::Trailer { cr: true, .. }, b'\n') => Chunk::Trailer { len: 0, cr: false },
        (Chunk::Trailer { len, cr: false }, _) => Chunk::Trailer {
            len: len + 1,
            cr: false,
        },
        _ => return Frame::Lost,
    };
    Frame::Chunked(next)
}

/// The body framing a head announces (RFC 9112 §6.3), for a message that
/// may have a body.
fn body_frame(headers: &[httparse::Header<'_>]) -> Frame {
    let get = |name: &str| {
        headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    let te = get("transfer-encoding");
    let cl = get("content-length");
    if !te.is_empty() {
        let chunked_last = te
            .last()
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|v| v.trim() == "chunked");
        return if chunked_last && cl.is_empty() {
            Frame::Chunked(Chunk::Size {
                size: 0,
                digits: false,
                ext: false,
            })
        } else {
            Frame::Lost
        };
    }
    match cl.as_slice() {
        [] => Frame::Head,
        [one, rest @ ..] if rest.iter().all(|v| v == one) => match one.parse::<u64>() {
            Ok(0) => Frame::Head,
            Ok(n) => Frame::Fixed(n),
            Err(_) => Frame::Lost,
        },
        _ => Frame::Lost,
    }
}

/// The end of a head (`\r\n\r\n`) within `buf`, as the index just past it.
#[cfg(test)]
fn head_end(buf: &[u8]) -> Option<usize> {
    head_end_after(buf, 0)
}

/// [`head_end`] for a buffer whose first `known` bytes were scanned before
/// and hold no end: only the bytes after them (and the three before, where
/// an end may begin) are looked at, so a head read one byte at a time costs
/// linear, not quadratic, time.
fn head_end_after(buf: &[u8], known: usize) -> Option<usize> {
    let from = known.saturating_sub(3).min(buf.len());
    buf[from..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| from + i + 4)
}

/// Requests as the server reads them: which ones were `HEAD`.
struct Requests {
    frame: Frame,
    head: Vec<u8>,
    /// For each request read whose response has not been written: HEAD?
    pending: VecDeque<bool>,
}

impl Requests {
    fn read(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.frame {
                Frame::Lost => return,
                Frame::Head => {
                    let before = self.head.len();
                    self.head.extend_from_slice(bytes);
                    let Some(end) = head_end_after(&self.head, before) else {
                        if self.head.len() > MAX_HEAD {
                            self.frame = Frame::Lost;
                        }
                        return;
                    };
                    let used = end - before;
                    bytes = &bytes[used..];
                    let head = std::mem::take(&mut self.head);
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut req = httparse::Request::new(&mut headers);
                    match req.parse(&head[..end]) {
                        Ok(httparse::Status::Complete(_)) => {
                            self.pending.push_back(req.method == Some("HEAD"));
                            self.frame = body_frame(req.headers);
                        }
                        _ => self.frame = Frame::Lost,
                    }
                }
                _ => {
                    let used = self.frame.advance(bytes);
                    bytes = &bytes[used..];
                }
            }
        }
    }
}

/// A connection whose bodyless 4xx responses become problem documents.
pub struct ProblemIo<T> {
    inner: T,
    requests: Requests,
    /// Response framing.
    frame: Frame,
    /// The response head being gathered.
    head: Vec<u8>,
    /// Bytes accepted from the server, not yet written to the connection.
    out: Vec<u8>,
    written: usize,
}

impl<T> ProblemIo<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            requests: Requests {
                frame: Frame::Head,
                head: Vec::new(),
                pending: VecDeque::new(),
            },
            frame: Frame::Head,
            head: Vec::new(),
            out: Vec::new(),
            written: 0,
        }
    }

    /// A complete response head: queued as is, or as a problem document.
    fn response_head(&mut self, head: Vec<u8>) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(_)) = res.parse(&head) else {
            self.frame = Frame::Lost;
            self.out.extend_from_slice(&head);
            return;
        };
        let status = res.code.unwrap_or(0);
        if (100..200).contains(&status) {
            // Interim: the request still awaits its final response.
            self.out.extend_from_slice(&head);
            return;
        }
        let to_head_request = self.requests.pending.pop_front().unwrap_or(false);
        if to_head_request || status == 204 || status == 304 {
            self.frame = Frame::Head;
            self.out.extend_from_slice(&head);
            return;
        }
        let framed = res.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("content-length")
                || h.name.eq_ignore_ascii_case("transfer-encoding")
        });
        // Without either, a response's body runs until the connection
        // closes (RFC 9112 §6.3): nothing after it is a head to look at.
        self.frame = if framed {
            body_frame(res.headers)
        } else {
            Frame::Lost
        };
        let bodyless = framed && self.frame == Frame::Head;
        let typed = res
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("content-type"));
        if (400..500).contains(&status) && bodyless && !typed {
            let rewritten = problem_response(status, res.reason.unwrap_or(""), res.headers);
            self.out.extend_from_slice(&rewritten);
        } else {
            self.out.extend_from_slice(&head);
        }
    }
}

/// The same response with a problem document as its body.
fn problem_response(status: u16, reason: &str, headers: &[httparse::Header<'_>]) -> Vec<u8> {
    use crate::http::problem::Kind;
    let (kind, title, detail) = match status {
        400 => (
            Kind::MalformedRequest,
            "The request is not valid HTTP/1.1",
            "the request line or a header did not parse: a byte a header may not hold, a Content-Length that is not one decimal number, Content-Length together with Transfer-Encoding, or a chunk size that is not hex; the connection is closed",
        ),
        431 => (
            Kind::HeaderTooLarge,
            "Request header fields too large",
            "the request head is longer or has more fields than the server accepts; the connection is closed",
        ),
        _ => (
            Kind::HttpError,
            reason,
            "the HTTP layer refused the request before it reached the service",
        ),
    };
    let body = serde_json::json!({
        "type": format!("{}{}", crate::http::problem::TYPE_PREFIX, kind.code()),
        "title": title,
        "status": status,
        "detail": detail,
    })
    .to_string();
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
    for h in headers
        .iter()
        .filter(|h| !h.name.eq_ignore_ascii_case("content-length"))
    {
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "content-type: application/problem+json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body.as_bytes());
    out
}

impl<T: AsyncWrite + Unpin> ProblemIo<T> {
    /// Writes out what was accepted but not yet written.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.out.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            self.requests.read(read);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        match this.frame {
            Frame::Lost => Pin::new(&mut this.inner).poll_write(cx, buf),
            Frame::Head => {
                let before = this.head.len();
                this.head.extend_from_slice(buf);
                match head_end_after(&this.head, before) {
                    Some(end) => {
                        let mut head = std::mem::take(&mut this.head);
                        head.truncate(end);
                        this.response_head(head);
                        Poll::Ready(Ok(end - before))
                    }
                    None if this.head.len() > MAX_HEAD => {
                        this.frame = Frame::Lost;
                        let head = std::mem::take(&mut this.head);
                        this.out.extend_from_slice(&head);
                        Poll::Ready(Ok(buf.len()))
                    }
                    None => Poll::Ready(Ok(buf.len())),
                }
            }
            _ => {
                // Body bytes go straight through, up to the message's end.
                let end = this.frame.clone().advance(buf);
                let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..end]))?;
                this.frame.advance(&buf[..n]);
                Poll::Ready(Ok(n))
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A head cut short by the close goes out as it is.
        let partial = std::mem::take(&mut self.head);
        self.out.extend_from_slice(&partial);
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// What the client receives when the server writes `writes` in `step`-byte
    /// pieces after reading `requests`.
    async fn through(requests: &[u8], writes: &[&[u8]], step: usize) -> Vec<u8> {
        let mut io = ProblemIo::new(Vec::new());
        io.requests.read(requests);
        for w in writes {
            for piece in w.chunks(step.max(1)) {
                io.write_all(piece).await.unwrap();
            }
        }
        io.flush().await.unwrap();
        // Every message here is well framed: both directions end between
        // messages, never lost.
        assert_eq!(io.frame, Frame::Head, "responses, step {step}");
        assert_eq!(io.requests.frame, Frame::Head, "requests");
        io.inner
    }

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nhello";
    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/csv\r\n\r\n5;x=1\r\nHTTP/\r\n18\r\n1.1 400 Bad Request\r\n\r\n \r\n0\r\nx-trailer: 1\r\n\r\n";
    const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Mon, 30 Nov 2026 13:24:38 GMT\r\n\r\n";
    const BIG: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
    const PROBLEM: &[u8] = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\ncontent-type: application/problem+json\r\n\r\n{}";

    fn gets(n: usize) -> Vec<u8> {
        b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n".repeat(n)
    }

    fn body_of(response: &[u8]) -> serde_json::Value {
        let end = head_end(response).unwrap();
        serde_json::from_slice(&response[end..]).unwrap()
    }

    #[tokio::test]
    async fn bodyless_errors_become_problems_and_nothing_else_changes() {
        for step in [1, 3, 7, 64, 4096] {
            // Whatever the write sizes, responses with bodies pass unchanged,
            // including a chunked body that spells an error head inside it.
            let normal = [OK, CHUNKED, PROBLEM, OK];
            let got = through(&gets(4), &normal, step).await;
            assert_eq!(got, normal.concat(), "step {step}");

            let got = through(&gets(2), &[OK, BAD], step).await;
            assert!(got.starts_with(OK));
            let rest = &got[OK.len()..];
            assert!(
                rest.starts_with(b"HTTP/1.1 400 Bad Request\r\n"),
                "{}",
                String::from_utf8_lossy(rest)
            );
            let text = String::from_utf8_lossy(rest).to_string();
            assert!(text.contains("connection: close\r\n"), "{text}");
            assert!(
                text.contains("content-type: application/problem+json\r\n"),
                "{text}"
            );
            let body = body_of(rest);
            assert_eq!(body["status"], 400);
            assert_eq!(body["type"], "urn:vanthu:problem:malformed-request");
            let len: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(len, rest.len() - head_end(rest).unwrap());

            let got = through(&gets(1), &[BIG], step).await;
            assert_eq!(body_of(&got)["type"], "urn:vanthu:problem:header-too-large");
        }
    }

    #[tokio::test]
    async fn a_head_request_has_no_response_body_to_follow() {
        // The response to HEAD announces 5 bytes but carries none: the next
        // response's head must still be seen as a head.
        let head_ok = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\n";
        let requests = b"HEAD /x HTTP/1.1\r\nhost: a\r\n\r\nGET /y HTTP/1.1\r\nhost: a\r\n\r\n";
        let got = through(requests, &[head_ok, BAD], 5).await;
        assert_eq!(&got[..head_ok.len()], head_ok);
        assert_eq!(body_of(&got[head_ok.len()..])["status"], 400);
    }

    #[tokio::test]
    async fn request_bodies_are_followed_to_the_next_request() {
        // A POST body that looks like a HEAD request is not one.
        let requests = b"POST /x HTTP/1.1\r\ncontent-length: 28\r\n\r\nHEAD / HTTP/1.1\r\nhost: a\r\n\r\nGET /y HTTP/1.1\r\n\r\n";
        let got = through(requests, &[OK, OK], 2).await;
        assert_eq!(got, [OK, OK].concat());
        let requests = b"POST /x HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n4\r\nHEAD\r\n0\r\n\r\nGET /y HTTP/1.1\r\n\r\n";
        let got = through(requests, &[OK, OK], 2).await;
        assert_eq!(got, [OK, OK].concat());
    }

    #[tokio::test]
    async fn a_body_until_close_and_a_cut_head_pass_through() {
        // HTTP/1.0 style: no Content-Length, no Transfer-Encoding; the body
        // runs to the close and may contain anything, an error head included.
        let mut io = ProblemIo::new(Vec::new());
        io.requests.read(&gets(1));
        let until_close = b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nHTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        io.write_all(until_close).await.unwrap();
        io.write_all(b"HTTP/1.1 400 Bad").await.unwrap();
        io.shutdown().await.unwrap();
        assert_eq!(io.inner, [&until_close[..], b"HTTP/1.1 400 Bad"].concat());
        // A head the server never finished still reaches the client at close.
        let mut io = ProblemIo::new(Vec::new());
        io.write_all(b"HTTP/1.1 200 OK\r\ncontent-le")
            .await
            .unwrap();
        io.shutdown().await.unwrap();
        assert_eq!(io.inner, b"HTTP/1.1 200 OK\r\ncontent-le");
    }

    #[test]
    fn a_head_end_is_found_across_any_split() {
        let head = b"GET /x HTTP/1.1\r\nhost: a\r\n\r\nrest";
        let end = head_end(head).unwrap();
        for known in 0..head.len() {
            // Scanned up to `known` bytes before (none of them an end), the
            // end is found wherever the split fell, even inside the CRLFCRLF.
            assert_eq!(
                head_end_after(head, known.min(end - 1)),
                Some(end),
                "{known}"
            );
        }
        assert_eq!(head_end_after(b"\r\n\r", 3), None);
        assert_eq!(head_end_after(b"", 7), None);
    }

    #[tokio::test]
    async fn heads_up_to_actix_https_limit_are_followed() {
        // A 100 KiB head (under actix-http's 128 KiB, over the old 64 KiB
        // limit) is followed, so a later bodyless 400 on the same
        // connection still becomes a problem.
        let long = format!(
            "GET /x HTTP/1.1\r\nhost: a\r\nx-long: {}\r\n\r\n",
            "a".repeat(100 * 1024)
        );
        let requests = [long.as_bytes(), &gets(1)[..]].concat();
        let mut io = ProblemIo::new(Vec::new());
        for piece in requests.chunks(1000) {
            io.requests.read(piece);
        }
        assert_eq!(io.requests.frame, Frame::Head);
        io.write_all(OK).await.unwrap();
        io.write_all(BAD).await.unwrap();
        io.flush().await.unwrap();
        assert_eq!(body_of(&io.inner[OK.len()..])["status"], 400);
    }

    #[test]
    fn framing_that_does_not_parse_is_passed_through() {
        let mut f = body_frame(&[httparse::Header {
            name: "Content-Length",
            value: b"12, 13",
        }]);
        assert_eq!(f, Frame::Lost);
        f = Frame::Chunked(Chunk::Size {
            size: 0,
            digits: false,
            ext: false,
        });
        assert_eq!(f.advance(b"zz\r\n"), 4);
        assert_eq!(f, Frame::Lost);
    }
}
