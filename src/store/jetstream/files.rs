//! Document files on the JetStream cluster (docs/JETSTREAM.md, "Files"):
//! the bytes in the object store bucket `<stream>_FILES`, named by their
//! SHA-256 and checked against it on every read; who uploaded what, when,
//! in the key-value bucket `<stream>_UPLOADS`, so an upload through one node
//! is citable through every other. Same contract as `RocksLog`'s blobs.
//!
//! Keys: `u.<owner>` → JSON `{sha256: [size, unix seconds]}` (one
//! official's uploads: a quota check is one read), and `o.<sha256>` → JSON
//! `[owner, …]` (who holds a file). Both change by compare-and-set at the
//! revision read, so nodes never lose each other's updates. Owner ids may
//! hold `.`, `@` or `:`, escaped (`=2E`, `=40`, `=3A`: any byte a key may
//! not hold, `=XX`) so each is one key token.
//!
//! Must never: store bytes under any name but their hash, hand out bytes
//! whose hash is not their name, or delete bytes an upload still records
//! (a deletion re-checks after it, and puts back the bytes it read).

use async_nats::jetstream::{self, kv, object_store};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::store::blobs::{blob_key, BlobStore, TOUCH_GRANULARITY_SECONDS};
use crate::store::{StoreError, Upload};

/// The files of one JetStream log.
pub struct JetStreamFiles {
    objects: object_store::ObjectStore,
    uploads: kv::Store,
}

fn nats(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("JetStream {what}: {e}"))
}

/// Waits until stream `name` (a bucket's: `OBJ_…`, `KV_…`) has a leader:
/// a stream just created on a busy cluster may take seconds to elect one,
/// and meanwhile every write to it is refused.
pub(super) async fn led(js: &jetstream::Context, name: &str) -> Result<(), StoreError> {
    answering(name, || async {
        match js.get_stream(name).await {
            Ok(s) => s
                .cached_info()
                .cluster
                .as_ref()
                .is_none_or(|c| c.leader.as_deref().is_some_and(|l| !l.is_empty())),
            Err(_) => false,
        }
    })
    .await
}

/// The key-value bucket `config.bucket`, created when missing. A cluster
/// busy electing or placing other streams (a node down, say) may refuse a
/// creation for a while: asked again, for about 30 s, as the log's stream
/// is (another node may create it meanwhile); then waits for its leader.
pub(super) async fn key_value(
    js: &jetstream::Context,
    config: kv::Config,
) -> Result<kv::Store, StoreError> {
    let bucket = config.bucket.clone();
    let what = format!("key-value bucket {bucket}");
    let mut tries = 0;
    let store = loop {
        if let Ok(kv) = js.get_key_value(&bucket).await {
            break kv;
        }
        match js.create_key_value(config.clone()).await {
            Ok(kv) => break kv,
            Err(e) if tries < 120 => {
                tries += 1;
                tracing::warn!(bucket = %bucket, error = %e, "the bucket could not be created yet; asking again");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => return Err(nats(&what, e)),
        }
    };
    led(js, &format!("KV_{bucket}")).await?;
    Ok(store)
}

/// Waits until a bucket just created or found answers (its stream may
/// still be electing a leader): `probe` succeeds, within about 30 s.
pub(super) async fn answering<F, Fut>(what: &str, mut probe: F) -> Result<(), StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..150 {
        if probe().await {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(nats(what, "no answer within 30 s"))
}

/// An owner id as one key token: every byte outside what a key may hold
/// besides `.` (`[-/_A-Za-z0-9]`) as `=XX` in hex (so `.` is `=2E`, `@` is
/// `=40`, `:` is `=3A`, `=` itself `=3D`).
fn token(owner: &str) -> String {
    let mut out = String::with_capacity(owner.len());
    for b in owner.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

fn untoken(token: &str) -> String {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) if bytes[i] == b'=' => {
                out.push(b);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn uploads_key(owner: &str) -> String {
    format!("u.{}", token(owner))
}

fn holders_key(sha: &str) -> String {
    format!("o.{sha}")
}

/// One official's uploads: sha256 → (size, unix seconds).
type Uploads = std::collections::BTreeMap<String, (u64, i64)>;

/// Most attempts of one compare-and-set before giving up.
const CAS_ATTEMPTS: usize = 64;
/// A request the cluster did not answer (a bucket electing a leader) is
/// asked again this many times, this far apart, before the caller gets 503.
const RETRIES: usize = 25;
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

impl JetStreamFiles {
    /// The buckets of log stream `stream`, created when missing.
    pub async fn open(
        js: &jetstream::Context,
        stream: &str,
        replicas: usize,
    ) -> Result<Self, StoreError> {
        let objects_bucket = format!("{stream}_FILES");
        // Asked again on a busy cluster, as key-value buckets are.
        let mut tries = 0;
        let objects = loop {
            if let Ok(o) = js.get_object_store(&objects_bucket).await {
                break o;
            }
            match js
                .create_object_store(object_store::Config {
                    bucket: objects_bucket.clone(),
                    description: Some("vanthu document files, named by SHA-256".into()),
                    num_replicas: replicas,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
            {
                Ok(o) => break o,
                Err(e) if tries < 120 => {
                    tries += 1;
                    tracing::warn!(bucket = %objects_bucket, error = %e, "the object store could not be created yet; asking again");
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                Err(e) => return Err(nats(&format!("object store {objects_bucket}"), e)),
            }
        };
        let uploads_bucket = format!("{stream}_UPLOADS");
        let uploads = key_value(
            js,
            kv::Config {
                bucket: uploads_bucket.clone(),
                description: "vanthu uploads: who uploaded which file, when".into(),
                history: 1,
                num_replicas: replicas,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            },
        )
        .await?;
        led(js, &format!("OBJ_{objects_bucket}")).await?;
        answering(&objects_bucket, || async {
            matches!(objects.info("probe").await, Err(ref e) if e.kind() == object_store::InfoErrorKind::NotFound)
                || objects.info("probe").await.is_ok()
        })
        .await?;
        answering(&uploads_bucket, || async {
            uploads.get("probe").await.is_ok()
        })
        .await?;
        Ok(Self { objects, uploads })
    }

    /// The JSON value under `key` and its revision (0: absent).
    async fn read<T: serde::de::DeserializeOwned + Default>(
        &self,
        key: &str,
    ) -> Result<(T, u64), StoreError> {
        let mut entry = self.uploads.entry(key).await;
        for _ in 0..RETRIES {
            if entry.is_ok() {
                break;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
            entry = self.uploads.entry(key).await;
        }
        match entry.map_err(|e| nats("upload record", e))? {
            Some(e) if e.operation == kv::Operation::Put => {
                let v = serde_json::from_slice(&e.value).map_err(|e| StoreError::Corrupt {
                    position: 0,
                    reason: format!("upload record {key}: {e}"),
                })?;
                Ok((v, e.revision))
            }
            Some(e) => Ok((T::default(), e.revision)),
            None => Ok((T::default(), 0)),
        }
    }

    /// Changes the JSON value under `key` with `f` (which returns whether
    /// it changed anything, and what to answer) by compare-and-set,
    /// reading again when another node wrote in between.
    async fn modify<T, R>(
        &self,
        key: &str,
        mut f: impl FnMut(&mut T) -> (bool, R),
    ) -> Result<R, StoreError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Default,
    {
        for _ in 0..CAS_ATTEMPTS {
            let (mut value, revision) = self.read::<T>(key).await?;
            let (changed, answer) = f(&mut value);
            if !changed {
                return Ok(answer);
            }
            let bytes =
                Bytes::from(serde_json::to_vec(&value).map_err(|e| nats("upload record", e))?);
            let written = if revision == 0 {
                self.uploads
                    .create(key, bytes)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            } else {
                self.uploads
                    .update(key, bytes, revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            };
            if written.is_ok() {
                return Ok(answer);
            }
            // Another node wrote first, or the bucket is changing leader.
            tokio::time::sleep(RETRY_PAUSE / 2).await;
        }
        Err(nats(
            "upload record",
            format!("{key} kept changing under {CAS_ATTEMPTS} attempts"),
        ))
    }

    async fn put_bytes(&self, sha: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let mut last = None;
        for _ in 0..RETRIES {
            let mut reader = bytes;
            match self.objects.put(sha, &mut reader).await {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        Err(nats(
            "object put",
            last.map_or_else(String::new, |e| e.to_string()),
        ))
    }

    async fn read_bytes(&self, sha: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut attempt = 0;
        let mut object = loop {
            match self.objects.get(sha).await {
                Ok(o) => break o,
                Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
                Err(e) if attempt + 1 >= RETRIES => return Err(nats("object get", e)),
                Err(_) => attempt += 1,
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        };
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| nats("object read", e))?;
        if hex::encode(Sha256::digest(&bytes)) != sha {
            return Err(StoreError::Corrupt {
                position: 0,
                reason: format!("the object store's file {sha} does not hash to its name"),
            });
        }
        Ok(Some(bytes))
    }
}

impl BlobStore for JetStreamFiles {
    fn put<'a>(
        &'a self,
        bytes: &'a [u8],
        owner: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<(String, bool), StoreError>> {
        Box::pin(async move {
            let sha = hex::encode(Sha256::digest(bytes));
            let new = matches!(
                self.objects.info(&sha).await,
                Err(ref e) if e.kind() == object_store::InfoErrorKind::NotFound
            );
            // The records first, then the bytes, always: a collection that
            // deleted the bytes in between sees the records and puts them back.
            self.modify(&holders_key(&sha), |owners: &mut Vec<String>| {
                let add = !owners.iter().any(|o| o == owner);
                if add {
                    owners.push(owner.to_owned());
                }
                (add, ())
            })
            .await?;
            let size = bytes.len() as u64;
            self.modify(&uploads_key(owner), |mine: &mut Uploads| {
                (mine.insert(sha.clone(), (size, at)) != Some((size, at)), ())
            })
            .await?;
            self.put_bytes(&sha, bytes).await?;
            Ok((sha, new))
        })
    }

    fn uploads<'a>(
        &'a self,
        owner: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Upload>, StoreError>> {
        Box::pin(async move {
            let owners = match owner {
                Some(o) => vec![o.to_owned()],
                // Every official's: a collection pass, in the background.
                None => {
                    let mut keys = self
                        .uploads
                        .keys()
                        .await
                        .map_err(|e| nats("upload keys", e))?;
                    let mut owners = Vec::new();
                    while let Some(k) = keys.next().await {
                        let k = k.map_err(|e| nats("upload keys", e))?;
                        if let Some(t) = k.strip_prefix("u.") {
                            owners.push(untoken(t));
                        }
                    }
                    owners.sort();
                    owners
                }
            };
            let mut out = Vec::new();
            for owner in owners {
                let (mine, _) = self.read::<Uploads>(&uploads_key(&owner)).await?;
                out.extend(mine.into_iter().map(|(sha256, (size, at))| Upload {
                    owner: owner.clone(),
                    sha256,
                    size,
                    at,
                }));
            }
            Ok(out)
        })
    }

    fn touch<'a>(
        &'a self,
        sha256_hex: &'a str,
        owner: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            if blob_key(sha256_hex).is_none() {
                return Ok(false);
            }
            self.modify(&uploads_key(owner), |mine: &mut Uploads| {
                match mine.get_mut(sha256_hex) {
                    None => (false, false),
                    // Touched within the last minute: nothing to write.
                    Some((_, was)) if *was >= at - TOUCH_GRANULARITY_SECONDS => (false, true),
                    Some((_, was)) => {
                        *was = at;
                        (true, true)
                    }
                }
            })
            .await
        })
    }

    fn collect<'a>(
        &'a self,
        sha256_hex: &'a str,
        owner: &'a str,
        before: i64,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            if blob_key(sha256_hex).is_none() {
                return Ok(None);
            }
            let forgot = self
                .modify(&uploads_key(owner), |mine: &mut Uploads| {
                    match mine.get(sha256_hex) {
                        Some((_, at)) if *at < before => {
                            mine.remove(sha256_hex);
                            (true, true)
                        }
                        _ => (false, false),
                    }
                })
                .await?;
            if !forgot {
                return Ok(None);
            }
            let holders = holders_key(sha256_hex);
            let left = self
                .modify(&holders, |owners: &mut Vec<String>| {
                    let before = owners.len();
                    owners.retain(|o| o != owner);
                    (owners.len() != before, owners.len())
                })
                .await?;
            if left > 0 {
                return Ok(Some(0));
            }
            // The same official uploaded it again between the two changes
            // (their holder mark was still there, so the upload only wrote
            // their record): mark them again and keep the bytes.
            let (mine, _) = self.read::<Uploads>(&uploads_key(owner)).await?;
            if mine.contains_key(sha256_hex) {
                self.modify(&holders, |owners: &mut Vec<String>| {
                    let add = !owners.iter().any(|o| o == owner);
                    if add {
                        owners.push(owner.to_owned());
                    }
                    (add, ())
                })
                .await?;
                return Ok(Some(0));
            }
            let Some(bytes) = self.read_bytes(sha256_hex).await? else {
                return Ok(Some(0));
            };
            self.objects
                .delete(sha256_hex)
                .await
                .map_err(|e| nats("object delete", e))?;
            // An upload through another node may have recorded itself after
            // the check above and found the bytes still there: keep them.
            let (owners, _) = self.read::<Vec<String>>(&holders).await?;
            if !owners.is_empty() {
                self.put_bytes(sha256_hex, &bytes).await?;
                return Ok(Some(0));
            }
            Ok(Some(bytes.len() as u64))
        })
    }

    fn owned_by<'a>(
        &'a self,
        sha256_hex: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            if blob_key(sha256_hex).is_none() {
                return Ok(false);
            }
            let (owners, _) = self.read::<Vec<String>>(&holders_key(sha256_hex)).await?;
            Ok(owners.iter().any(|o| o == owner))
        })
    }

    fn get<'a>(
        &'a self,
        sha256_hex: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            if blob_key(sha256_hex).is_none() {
                return Ok(None);
            }
            self.read_bytes(sha256_hex).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_ids_are_one_token_and_map_back() {
        // `interchange:ha-tinh` is what a peer's arriving files are held
        // under; before, its `:` made every key of it invalid.
        for owner in [
            "ubnd-van-thu",
            "a.b@c.vn",
            "x=y",
            "a=2Eb",
            "interchange:ha-tinh",
            "Trần Thị B",
            "=",
            "=4",
        ] {
            let t = token(owner);
            assert!(async_nats_key(&format!("u.{t}")), "{owner} -> {t}");
            assert_eq!(untoken(&t), owner);
        }
        // Keys written before the escaping was widened read back the same.
        assert_eq!(untoken("a=2Eb=40c=3Dd"), "a.b@c=d");
    }

    /// What async-nats 0.51 accepts as a key (`kv::is_valid_key`), and
    /// exactly one token after the prefix.
    fn async_nats_key(key: &str) -> bool {
        let rest = key.strip_prefix("u.").unwrap_or("");
        !rest.is_empty()
            && !rest.contains('.')
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
    }
}
