//! One append's trip to the server: the atomic batch (ADR-50) sent message by
//! message (`send`), the server's answers (`PubAck`, `Sent`), and, after a
//! commit that got no answer, reading back whether it landed (`read_back`).
//!
//! Must never: send a batch again after its commit went unanswered (only
//! `read_back` may decide what happened), or report `Stored` without the
//! server's PubAck.

use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use serde::Deserialize;
use uuid::Uuid;

use super::{Fault, JetStreamLog, BATCH_COMMIT, BATCH_ID, BATCH_SEQUENCE};
use crate::store::{AppendError, Appended};

/// The server's answer to a publish.
#[derive(Deserialize)]
pub(super) struct PubAck {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Deserialize, Debug)]
pub(super) struct ApiError {
    #[serde(default)]
    pub(super) err_code: u64,
    #[serde(default)]
    pub(super) description: String,
}

/// How a batch went.
pub(super) enum Sent {
    /// Stored: the last message's sequence and the message count.
    Stored { last: u64, count: u64 },
    /// The server refused it: nothing was stored.
    Refused(ApiError),
    /// It never reached the commit: nothing can be stored.
    Unsent(String),
    /// The commit was sent and no answer came: it may or may not be stored.
    Ambiguous(String),
}

impl JetStreamLog {
    /// Sends one batch: the first message as a request (the server stages
    /// it or refuses), the middle ones as publishes, the last with
    /// `Nats-Batch-Commit: 1` as a request answered by the PubAck. A single
    /// message is an ordinary publish with its expectation.
    pub(super) async fn send(&self, messages: Vec<(String, HeaderMap, Bytes)>) -> Sent {
        let n = messages.len();
        let _slot = if n > 1 {
            match self.inflight.acquire().await {
                Ok(permit) => Some(permit),
                Err(_) => return Sent::Unsent("the log is closing".into()),
            }
        } else {
            None
        };
        let batch = Uuid::now_v7().simple().to_string();
        for (i, (subject, mut headers, body)) in messages.into_iter().enumerate() {
            let last = i + 1 == n;
            if n > 1 {
                headers.insert(BATCH_ID, batch.as_str());
                headers.insert(BATCH_SEQUENCE, (i + 1).to_string().as_str());
                if last {
                    headers.insert(BATCH_COMMIT, "1");
                }
            }
            let subject = Subject::from(subject);
            if last {
                let nth = self
                    .commits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                if let Some(Fault::LoseCommit(every)) = self.fault {
                    if nth.is_multiple_of(every) {
                        return Sent::Ambiguous("test hook: the commit was lost".into());
                    }
                }
                let sent = match self
                    .client
                    .request_with_headers(subject, headers, body)
                    .await
                {
                    Ok(reply) => match serde_json::from_slice::<PubAck>(&reply.payload) {
                        Ok(PubAck { error: Some(e), .. }) => Sent::Refused(e),
                        // Exactly the messages sent, or it is not known what.
                        Ok(ack) if ack.seq > 0 && ack.count.unwrap_or(1) == n as u64 => {
                            Sent::Stored {
                                last: ack.seq,
                                count: n as u64,
                            }
                        }
                        Ok(_) | Err(_) => Sent::Ambiguous(format!(
                            "the commit was answered with {:?}",
                            String::from_utf8_lossy(&reply.payload)
                        )),
                    },
                    // Nobody took the commit: not stored, safe to send again.
                    Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                        Sent::Unsent(e.to_string())
                    }
                    Err(e) => Sent::Ambiguous(e.to_string()),
                };
                return match (self.fault, sent) {
                    (Some(Fault::LoseReply(every)), Sent::Stored { .. })
                        if nth.is_multiple_of(every) =>
                    {
                        Sent::Ambiguous("test hook: the answer was lost".into())
                    }
                    (_, sent) => sent,
                };
            }
            if i == 0 {
                match self
                    .client
                    .request_with_headers(subject, headers, body)
                    .await
                {
                    Ok(reply) if reply.payload.is_empty() => {}
                    Ok(reply) => match serde_json::from_slice::<PubAck>(&reply.payload) {
                        Ok(PubAck { error: Some(e), .. }) => return Sent::Refused(e),
                        // A store acknowledged for a batch's start: not the
                        // protocol; whether anything landed is not known.
                        Ok(PubAck { seq, .. }) if seq > 0 => {
                            return Sent::Ambiguous(format!(
                                "the batch's start was acknowledged as stored at {seq}"
                            ))
                        }
                        _ => {
                            return Sent::Unsent(format!(
                                "the batch's start was answered with {:?}",
                                String::from_utf8_lossy(&reply.payload)
                            ))
                        }
                    },
                    Err(e) => return Sent::Unsent(e.to_string()),
                }
            } else if let Err(e) = self
                .client
                .publish_with_headers(subject, headers, body)
                .await
            {
                return Sent::Unsent(e.to_string());
            }
        }
        Sent::Unsent("an append needs at least one event".into())
    }

    /// After a commit without an answer: whether the append landed, read
    /// from the replica once it has everything the stream has. Never sends
    /// the batch again.
    pub(super) async fn read_back(
        &self,
        first_id: Uuid,
        events: u64,
        key: Option<&str>,
        why: String,
    ) -> Result<Appended, AppendError> {
        tracing::warn!(error = %why, "a commit got no answer: reading back whether it landed");
        let mut settled = false;
        for _ in 0..3 {
            if self.catch_up().await.is_ok() {
                settled = true;
                break;
            }
        }
        if settled {
            if let Some(p) = self.replica.event_position(&first_id)? {
                if let Some(done) = self.summary(
                    p,
                    p + events - 1 + u64::from(key.is_some()),
                    first_id,
                    key.is_some(),
                    false,
                )? {
                    return Ok(done);
                }
            }
        }
        Err(AppendError::Indeterminate(format!(
            "the commit got no answer ({why}) and the append is not in the stream yet; retry with the same idempotency key"
        )))
    }
}
