//! The JetStream stream itself: creating it or checking the one there
//! (`ensure_stream`), refusing a replica that is not a prefix of it
//! (`same_log`), and reading the server's version (`parse_version`).
//!
//! Must never: change a stream that exists in a way that would not keep the
//! log whole, or let a replica follow a stream it is not a prefix of.

use async_nats::jetstream::{self, stream};

use super::{Body, JetStreamError, RocksLog};

pub(super) fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim_start_matches('v').split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// Refuses a replica that is not a prefix of the stream: its last record
/// must be the stream's message at that sequence (another stream, or a
/// stream deleted and created again, would otherwise be followed from the
/// middle).
pub(super) async fn same_log(
    replica: &RocksLog,
    js: &jetstream::Context,
    name: &str,
) -> Result<(), JetStreamError> {
    let head = replica.head();
    if head == 0 {
        return Ok(());
    }
    let differs = |why: String| {
        JetStreamError::Replica(format!(
            "the data directory holds {head} records that are not stream {name}'s ({why}): point it at its own stream, or start this node on an empty data directory"
        ))
    };
    let stream = js
        .get_stream(name)
        .await
        .map_err(|e| differs(e.to_string()))?;
    let message = stream
        .direct_get(head)
        .await
        .map_err(|e| differs(format!("message {head}: {e}")))?;
    let body: Body = serde_json::from_slice(&message.payload)
        .map_err(|e| differs(format!("message {head}: {e}")))?;
    let ours = replica
        .read_all(head, 1)
        .map_err(|e| JetStreamError::Replica(e.to_string()))?;
    match ours.first() {
        Some(r) if r.event_id == body.id => Ok(()),
        _ => Err(differs(format!("event {} at {head}", body.id))),
    }
}

/// How long a node keeps asking a busy cluster to create the log's stream.
const CREATE_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Creates the stream, or checks that the one there keeps history.
pub(super) async fn ensure_stream(
    js: &jetstream::Context,
    name: &str,
    prefix: &str,
    replicas: usize,
) -> Result<(), JetStreamError> {
    let refuse = |reason: String| JetStreamError::Stream {
        stream: name.to_owned(),
        reason,
    };
    let wanted = stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{prefix}>")],
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_direct: true,
        allow_atomic_publish: true,
        ..Default::default()
    };
    // A cluster busy electing or placing other streams may refuse or time
    // out a creation for a while: asked again (another node may create it
    // meanwhile) until CREATE_WITHIN has passed.
    let deadline = std::time::Instant::now() + CREATE_WITHIN;
    let config = loop {
        let not_found = match js.get_stream(name).await {
            Ok(s) => break s.cached_info().config.clone(),
            Err(e) => {
                if !matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(j)
                        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                ) {
                    return Err(refuse(e.to_string()));
                }
                e
            }
        };
        match js.create_stream(wanted.clone()).await {
            Ok(s) => break s.cached_info().config.clone(),
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::warn!(stream = name, error = %e, "the stream could not be created yet; asking again");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => return Err(refuse(format!("{not_found}, and creating it failed: {e}"))),
        }
    };
    let mut wrong = Vec::new();
    if !config.deny_delete {
        wrong.push("deny_delete is off");
    }
    if !config.deny_purge {
        wrong.push("deny_purge is off");
    }
    if config.allow_rollup {
        wrong.push("rollups are allowed");
    }
    if !config.allow_atomic_publish {
        wrong.push("atomic publish is off");
    }
    if config.max_messages > 0
        || config.max_bytes > 0
        || config.max_messages_per_subject > 0
        || !config.max_age.is_zero()
    {
        wrong.push("it has a limit that deletes messages");
    }
    if config.retention != stream::RetentionPolicy::Limits {
        wrong.push("its retention deletes consumed messages");
    }
    if config.subjects != [format!("{prefix}>")] {
        wrong.push("its subjects are not exactly the log's");
    }
    if config.storage != stream::StorageType::File {
        wrong.push("it is not on disk (file storage)");
    }
    if !config.allow_direct {
        wrong.push("direct gets are off");
    }
    let copies;
    if config.num_replicas != replicas {
        copies = format!(
            "it has {} replicas, store.jetstream.replicas says {replicas}",
            config.num_replicas
        );
        wrong.push(&copies);
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(refuse(format!(
            "it would not keep the log whole: {}",
            wrong.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::super::MIN_SERVER;
    use super::*;

    #[test]
    fn server_versions_are_compared_as_numbers() {
        for (v, ok) in [
            ("2.15.1", true),
            ("v2.14.6", true),
            ("2.14.5", false),
            ("2.12.15", false),
            ("2.9.10", false),
            ("2.16.0-dev", true),
            ("3.0.0", true),
            ("garbage", false),
        ] {
            assert_eq!(parse_version(v).is_some_and(|p| p >= MIN_SERVER), ok, "{v}");
        }
    }
}
