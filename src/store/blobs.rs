//! Content-addressed blobs (document files) in the `blobs` family, outside
//! the log proper: the bytes under their SHA-256, who uploaded them and
//! when, so the service can enforce quotas and collect uploads nobody
//! cites. The store does not know what cites a blob; the caller says which
//! uploads to collect.
//!
//! Must never: store bytes under any key but their own hash, or delete bytes
//! while another uploader's record of them remains.

use futures_util::future::BoxFuture;

use super::rocks::{self, cf};
use super::{RocksLog, StoreError};

/// Where document files live: `RocksLog` keeps them in its `blobs` family;
/// `jetstream_files::JetStreamFiles` in a JetStream object store, with the
/// uploads in a key-value bucket, so every node sees every upload. The
/// methods are `RocksLog`'s of the same names, asynchronous.
pub trait BlobStore: Send + Sync {
    /// `RocksLog::put_blob`.
    fn put<'a>(
        &'a self,
        bytes: &'a [u8],
        owner: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<(String, bool), StoreError>>;
    /// `RocksLog::blob_uploads`.
    fn uploads<'a>(
        &'a self,
        owner: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Upload>, StoreError>>;
    /// `RocksLog::touch_blob_upload`.
    fn touch<'a>(
        &'a self,
        sha256_hex: &'a str,
        owner: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// `RocksLog::collect_blob_upload`.
    fn collect<'a>(
        &'a self,
        sha256_hex: &'a str,
        owner: &'a str,
        before: i64,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>>;
    /// `RocksLog::blob_owned_by`.
    fn owned_by<'a>(
        &'a self,
        sha256_hex: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// `RocksLog::get_blob`.
    fn get<'a>(&'a self, sha256_hex: &'a str)
        -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
}

impl BlobStore for RocksLog {
    fn put<'a>(
        &'a self,
        bytes: &'a [u8],
        owner: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<(String, bool), StoreError>> {
        Box::pin(async move { self.put_blob(bytes, owner, at) })
    }
    fn uploads<'a>(
        &'a self,
        owner: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Upload>, StoreError>> {
        Box::pin(async move { self.blob_uploads(owner) })
    }
    fn touch<'a>(
        &'a self,
        sha256_hex: &'a str,
        owner: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { self.touch_blob_upload(sha256_hex, owner, at) })
    }
    fn collect<'a>(
        &'a self,
        sha256_hex: &'a str,
        owner: &'a str,
        before: i64,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move { self.collect_blob_upload(sha256_hex, owner, before) })
    }
    fn owned_by<'a>(
        &'a self,
        sha256_hex: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { self.blob_owned_by(sha256_hex, owner) })
    }
    fn get<'a>(
        &'a self,
        sha256_hex: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move { self.get_blob(sha256_hex) })
    }
}

/// `o` ‖ hash ‖ owner: never 32 bytes long, so never a blob's key.
fn owner_key(hash: &[u8; 32], owner: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(33 + owner.len());
    k.push(b'o');
    k.extend_from_slice(hash);
    k.extend_from_slice(owner.as_bytes());
    k
}

/// `u` ‖ owner ‖ `/` ‖ hash → size (u64 BE) ‖ uploaded at (i64 BE Unix
/// seconds): one official's uploads, for quotas and collection. Owner ids
/// never contain `/` (`domain::org::check_id`).
fn upload_key(owner: &str, hash: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(34 + owner.len());
    k.push(b'u');
    k.extend_from_slice(owner.as_bytes());
    k.push(b'/');
    k.extend_from_slice(hash);
    k
}

/// An upload's time is moved forward by a citing command only when it is
/// older than this.
pub(super) const TOUCH_GRANULARITY_SECONDS: i64 = 60;

/// One official's upload of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub owner: String,
    pub sha256: String,
    pub size: u64,
    /// Unix seconds.
    pub at: i64,
}

fn parse_upload(key: &[u8], value: &[u8]) -> Option<Upload> {
    let rest = key.strip_prefix(b"u")?;
    let (owner, hash) = rest.split_at(rest.len().checked_sub(33)?);
    let hash = hash.strip_prefix(b"/")?;
    let size = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    let at = i64::from_be_bytes(value.get(8..16)?.try_into().ok()?);
    Some(Upload {
        owner: String::from_utf8(owner.to_vec()).ok()?,
        sha256: hex::encode(hash),
        size,
        at,
    })
}

/// The hash a lower-case hex SHA-256 names, if it is one.
pub(super) fn blob_key(sha256_hex: &str) -> Option<[u8; 32]> {
    if sha256_hex.len() != 64 || sha256_hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(sha256_hex).ok()?.try_into().ok()
}

impl RocksLog {
    /// Stores `bytes` under their SHA-256 (lower-case hex), durably, and
    /// records `owner` as one who uploaded them at `at` (Unix seconds);
    /// storing the same bytes again only adds or refreshes the owner's
    /// upload. Returns the hash and whether the bytes were new.
    pub fn put_blob(
        &self,
        bytes: &[u8],
        owner: &str,
        at: i64,
    ) -> Result<(String, bool), StoreError> {
        use sha2::{Digest, Sha256};
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        let db = &self.inner.db;
        let blobs = cf(db, rocks::CF_BLOBS);
        let _serial = self.blob_lock();
        let mut batch = rocksdb::WriteBatch::default();
        let new = db.get_pinned_cf(&blobs, hash)?.is_none();
        let incoming = if new { bytes.len() as u64 } else { 0 };
        self.inner
            .space
            .check(incoming)
            .map_err(StoreError::StorageFull)?;
        if new {
            batch.put_cf(&blobs, hash, bytes);
        }
        batch.put_cf(&blobs, owner_key(&hash, owner), at.to_be_bytes());
        let mut upload = (bytes.len() as u64).to_be_bytes().to_vec();
        upload.extend_from_slice(&at.to_be_bytes());
        batch.put_cf(&blobs, upload_key(owner, &hash), upload);
        db.write_opt(batch, &rocks::sync_write())?;
        Ok((hex::encode(hash), new))
    }

    /// Serialises blob writes and deletions, so a deletion never removes
    /// bytes that a concurrent upload found present and did not rewrite.
    fn blob_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .blob_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// `owner`'s uploads (`owner` = None: everyone's), in key order.
    pub fn blob_uploads(&self, owner: Option<&str>) -> Result<Vec<Upload>, StoreError> {
        let db = &self.inner.db;
        let mut prefix = vec![b'u'];
        if let Some(owner) = owner {
            prefix.extend_from_slice(owner.as_bytes());
            prefix.push(b'/');
        }
        let mut out = Vec::new();
        let it = db.iterator_cf(
            &cf(db, rocks::CF_BLOBS),
            rocksdb::IteratorMode::From(&prefix, rocksdb::Direction::Forward),
        );
        for item in it {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            if let Some(u) = parse_upload(&k, &v) {
                out.push(u);
            }
        }
        Ok(out)
    }

    /// Marks `owner`'s upload of the blob as in use at `at` (Unix seconds),
    /// so collection, which takes only uploads older than its grace period,
    /// leaves it alone while a command cites it. False if `owner` never
    /// uploaded it (or it was collected).
    pub fn touch_blob_upload(
        &self,
        sha256_hex: &str,
        owner: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let Some(hash) = blob_key(sha256_hex) else {
            return Ok(false);
        };
        let db = &self.inner.db;
        let blobs = cf(db, rocks::CF_BLOBS);
        let _serial = self.blob_lock();
        // The upload record (written and deleted with the owner's mark)
        // holds the size: the blob's bytes are not read.
        let key = upload_key(owner, &hash);
        let Some(current) = db
            .get_pinned_cf(&blobs, &key)?
            .and_then(|v| parse_upload(&key, &v))
        else {
            return Ok(false);
        };
        // Touched within the last minute: nothing to move (grace periods
        // are hours), and no write on a command's path.
        if current.at >= at - TOUCH_GRANULARITY_SECONDS {
            return Ok(true);
        }
        let mut upload = current.size.to_be_bytes().to_vec();
        upload.extend_from_slice(&at.to_be_bytes());
        // Not synced: after a crash the log holds whatever cited the blob,
        // and collection waits for the citations to be read from the log.
        db.put_cf(&blobs, key, upload)?;
        Ok(true)
    }

    /// Forgets `owner`'s upload of the blob if it was made (or last in use)
    /// before `before` (Unix seconds), and the blob's bytes once no upload
    /// of it remains. Returns the bytes freed (None: the upload is newer or
    /// gone; 0: others keep the blob).
    pub fn collect_blob_upload(
        &self,
        sha256_hex: &str,
        owner: &str,
        before: i64,
    ) -> Result<Option<u64>, StoreError> {
        let Some(hash) = blob_key(sha256_hex) else {
            return Ok(None);
        };
        let db = &self.inner.db;
        let blobs = cf(db, rocks::CF_BLOBS);
        let _serial = self.blob_lock();
        let key = upload_key(owner, &hash);
        let current = db.get_pinned_cf(&blobs, &key)?;
        match current.as_deref().and_then(|v| parse_upload(&key, v)) {
            Some(u) if u.at < before => {}
            _ => return Ok(None),
        }
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete_cf(&blobs, owner_key(&hash, owner));
        batch.delete_cf(&blobs, &key);
        let mut prefix = vec![b'o'];
        prefix.extend_from_slice(&hash);
        let mut others = false;
        for item in db.iterator_cf(
            &blobs,
            rocksdb::IteratorMode::From(&prefix, rocksdb::Direction::Forward),
        ) {
            let (k, _) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            if k[prefix.len()..] != *owner.as_bytes() {
                others = true;
                break;
            }
        }
        let mut freed = 0;
        if !others {
            if let Some(bytes) = db.get_pinned_cf(&blobs, hash)? {
                freed = bytes.len() as u64;
            }
            batch.delete_cf(&blobs, hash);
        }
        db.write_opt(batch, &rocks::sync_write())?;
        Ok(Some(freed))
    }

    /// Whether `owner` uploaded the blob with this SHA-256 (hex).
    pub fn blob_owned_by(&self, sha256_hex: &str, owner: &str) -> Result<bool, StoreError> {
        let Some(key) = blob_key(sha256_hex) else {
            return Ok(false);
        };
        let db = &self.inner.db;
        Ok(db
            .get_pinned_cf(&cf(db, rocks::CF_BLOBS), owner_key(&key, owner))?
            .is_some())
    }

    /// The blob with this SHA-256 (hex), if stored.
    pub fn get_blob(&self, sha256_hex: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(key) = blob_key(sha256_hex) else {
            return Ok(None);
        };
        let db = &self.inner.db;
        Ok(db.get_cf(&cf(db, rocks::CF_BLOBS), key)?)
    }
}
