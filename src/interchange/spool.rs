//! Reading a peer's request body before its signature is known (D1): the
//! body streams to an unlinked temporary file while its HMAC is computed,
//! a batch at a time on a blocking thread, and is read back into memory
//! only once the signature verified. A stranger using a peer's public name
//! costs a bounded amount of memory (one batch) and no async worker time;
//! a chunked body meets the same limit as a declared `Content-Length`.
//!
//! Must never: hold an unauthenticated body in memory, read past the
//! limit, or hash on an async worker.

use std::io::{Read, Seek, Write};

use futures_util::{Stream, StreamExt};

use crate::webhooks::{Streaming, WebhookError};

/// Bytes gathered before a batch goes to the blocking thread.
const BATCH: usize = 1 << 20;

/// Why a body was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the body is over {0} bytes")]
    TooLarge(usize),
    #[error("the body could not be read: {0}")]
    Body(String),
    #[error("the request's signature: {0}")]
    Unauthenticated(WebhookError),
    #[error("the body could not be spooled: {0}")]
    Io(#[from] std::io::Error),
}

/// A temporary file nobody else can open: created in `dir`, unlinked at
/// once (it goes with its last handle, even if the process dies).
fn unlinked(dir: &std::path::Path) -> std::io::Result<std::fs::File> {
    let path = dir.join(format!("vanthu-inbound-{}", uuid::Uuid::now_v7().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// Hashes `batch` into `check` and appends it to `file`, on a blocking
/// thread; gives both back.
async fn feed(
    check: Streaming,
    file: std::fs::File,
    batch: Vec<u8>,
) -> Result<(Streaming, std::fs::File), SpoolError> {
    tokio::task::spawn_blocking(move || {
        let (mut check, mut file) = (check, file);
        check.update(&batch);
        file.write_all(&batch)?;
        Ok((check, file))
    })
    .await
    .map_err(|e| SpoolError::Io(std::io::Error::other(e)))?
}

/// The whole of `body` once `check` verified it: at most `limit` bytes,
/// spooled in `dir` meanwhile.
pub async fn authenticated<S, B, E>(
    mut body: S,
    check: Streaming,
    limit: usize,
    dir: &std::path::Path,
) -> Result<Vec<u8>, SpoolError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let dir = dir.to_owned();
    let file = tokio::task::spawn_blocking(move || unlinked(&dir))
        .await
        .map_err(|e| SpoolError::Io(std::io::Error::other(e)))??;
    let mut held = (check, file);
    let mut batch = Vec::with_capacity(BATCH);
    let mut size = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| SpoolError::Body(e.to_string()))?;
        let chunk = chunk.as_ref();
        size = size.saturating_add(chunk.len());
        if size > limit {
            return Err(SpoolError::TooLarge(limit));
        }
        batch.extend_from_slice(chunk);
        if batch.len() >= BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            held = feed(held.0, held.1, full).await?;
        }
    }
    let (check, file) = feed(held.0, held.1, batch).await?;
    check.finish().map_err(SpoolError::Unauthenticated)?;
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        file.rewind()?;
        let mut out = Vec::with_capacity(size);
        file.read_to_end(&mut out)?;
        Ok(out)
    })
    .await
    .map_err(|e| SpoolError::Io(std::io::Error::other(e)))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::{signature_header, WebhookSecret};

    fn chunks(body: &[u8]) -> impl Stream<Item = Result<Vec<u8>, String>> + Unpin + '_ {
        futures_util::stream::iter(body.chunks(300_000).map(|c| Ok(c.to_vec())))
    }

    #[tokio::test]
    async fn a_body_is_given_back_only_when_its_signature_verifies() {
        let secret = WebhookSecret::generate();
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let header = signature_header(std::slice::from_ref(&secret), "msg_1", 1000, &body);
        let start = |sig: &str| {
            Streaming::start(
                std::slice::from_ref(&secret),
                Some("msg_1"),
                Some("1000"),
                Some(sig),
                1000,
                300,
            )
            .unwrap()
        };
        let dir = std::env::temp_dir();
        let got = authenticated(chunks(&body), start(&header), 4_000_000, &dir)
            .await
            .unwrap();
        assert!(got == body, "the body as sent");
        let other = signature_header(&[WebhookSecret::generate()], "msg_1", 1000, &body);
        assert!(matches!(
            authenticated(chunks(&body), start(&other), 4_000_000, &dir).await,
            Err(SpoolError::Unauthenticated(_))
        ));
        // No Content-Length needed: the limit counts what streams in.
        assert!(matches!(
            authenticated(chunks(&body), start(&header), 2_999_999, &dir).await,
            Err(SpoolError::TooLarge(2_999_999))
        ));
    }
}
