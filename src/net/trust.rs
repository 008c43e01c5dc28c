//! Where trust is kept: the host's paired clients and the client's known hosts, each a TOML
//! file next to that side's identity, read and written whole.
//!
//! The host's file is written by the running host (a pairing) and by `kumo host --revoke`
//! in another process, so every change holds a lock file and replaces the file by rename;
//! the running host reads it again at each connection, so a revocation takes effect at once.
//! The records' rules are `core::trust`.

use crate::core::trust::{self, Fingerprint, PairedClient, RevokeError, Standing};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TrustError {
    #[error("could not {action} {}: {source}; check that the folder is writable by this user", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{} is damaged ({reason}); fix it or move it away (then pair again)", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error(transparent)]
    Revoke(#[from] RevokeError),
}

/// Seconds since 1970, for the records.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    #[serde(default)]
    client: Vec<ClientRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientRecord {
    name: String,
    fingerprint: String,
    paired_unix: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_unix: Option<u64>,
}

/// The clients a host paired with: in a file (`paired-clients.toml` in the host's identity
/// folder), or in memory only (an ephemeral host, the demo, tests).
pub struct ClientStore {
    path: Option<PathBuf>,
    memory: Mutex<Vec<PairedClient>>,
}

impl ClientStore {
    pub fn in_memory(clients: Vec<PairedClient>) -> Self {
        Self { path: None, memory: Mutex::new(clients) }
    }

    /// The store in the host identity folder `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self { path: Some(dir.join("paired-clients.toml")), memory: Mutex::default() }
    }

    pub fn list(&self) -> Result<Vec<PairedClient>, TrustError> {
        match &self.path {
            None => Ok(self.memory().clone()),
            Some(path) => read_clients(path),
        }
    }

    /// What the host thinks of the client with this certificate.
    pub fn standing(&self, fingerprint: Fingerprint) -> Result<Standing, TrustError> {
        Ok(trust::standing(&self.list()?, fingerprint))
    }

    /// Records a newly paired client; returns its record (its name made unique).
    pub fn add(&self, name: &str, fingerprint: Fingerprint) -> Result<PairedClient, TrustError> {
        self.update(|clients| Ok(trust::add_client(clients, name, fingerprint, unix_now())))
    }

    /// Revokes the client named `which` (name, or fingerprint prefix of ≥ 8 hex digits).
    pub fn revoke(&self, which: &str) -> Result<PairedClient, TrustError> {
        // Nothing paired (no file, or no folder yet): nothing to match, and nothing to write.
        if self.list()?.is_empty() {
            return Err(RevokeError::NoMatch(which.to_owned()).into());
        }
        self.update(|clients| Ok(trust::revoke(clients, which, unix_now())?))
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Vec<PairedClient>> {
        self.memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads, changes and writes the records under the lock.
    fn update<T>(&self, change: impl FnOnce(&mut Vec<PairedClient>) -> Result<T, TrustError>) -> Result<T, TrustError> {
        let Some(path) = &self.path else { return change(&mut self.memory()) };
        let _lock = lock_beside(path)?;
        let mut clients = read_clients(path)?;
        let out = change(&mut clients)?;
        let file = ClientsFile {
            client: clients
                .iter()
                .map(|c| ClientRecord {
                    name: c.name.clone(),
                    fingerprint: c.fingerprint.to_string(),
                    paired_unix: c.paired,
                    revoked_unix: c.revoked,
                })
                .collect(),
        };
        write_toml(path, &file)?;
        Ok(out)
    }
}

fn read_clients(path: &Path) -> Result<Vec<PairedClient>, TrustError> {
    let Some(file) = read_toml::<ClientsFile>(path)? else { return Ok(Vec::new()) };
    file.client
        .into_iter()
        .map(|r| {
            let fingerprint = Fingerprint::parse(&r.fingerprint)
                .map_err(|e| TrustError::Damaged { path: path.to_owned(), reason: e.to_string() })?;
            Ok(PairedClient { name: r.name, fingerprint, paired: r.paired_unix, revoked: r.revoked_unix })
        })
        .collect()
}

/// A host this client paired with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHost {
    pub address: SocketAddr,
    pub name: String,
    pub fingerprint: Fingerprint,
    /// Unix seconds.
    pub paired: u64,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HostsFile {
    #[serde(default)]
    host: Vec<HostRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostRecord {
    address: String,
    name: String,
    fingerprint: String,
    paired_unix: u64,
}

/// The hosts a client paired with (`known-hosts.toml` in the client's identity folder), by
/// address.
pub struct KnownHosts {
    path: PathBuf,
}

impl KnownHosts {
    pub fn in_dir(dir: &Path) -> Self {
        Self { path: dir.join("known-hosts.toml") }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn lookup(&self, address: SocketAddr) -> Result<Option<KnownHost>, TrustError> {
        Ok(self.list()?.into_iter().find(|h| h.address == address))
    }

    pub fn list(&self) -> Result<Vec<KnownHost>, TrustError> {
        let Some(file) = read_toml::<HostsFile>(&self.path)? else { return Ok(Vec::new()) };
        let damaged = |reason: String| TrustError::Damaged { path: self.path.clone(), reason };
        file.host
            .into_iter()
            .map(|r| {
                Ok(KnownHost {
                    address: r.address.parse().map_err(|_| damaged(format!("'{}' is not an address", r.address)))?,
                    name: r.name,
                    fingerprint: Fingerprint::parse(&r.fingerprint).map_err(|e| damaged(e.to_string()))?,
                    paired: r.paired_unix,
                })
            })
            .collect()
    }

    /// Keeps `host`, replacing the entry for its address; returns the entry it replaced.
    pub fn remember(&self, host: KnownHost) -> Result<Option<KnownHost>, TrustError> {
        if let Some(dir) = self.path.parent() {
            crate::net::files::create_private_dir(dir).map_err(|source| TrustError::Io {
                action: "create",
                path: dir.to_owned(),
                source,
            })?;
        }
        let _lock = lock_beside(&self.path)?;
        let mut hosts = self.list()?;
        let old = hosts.iter().position(|h| h.address == host.address).map(|i| hosts.remove(i));
        hosts.push(host);
        let file = HostsFile {
            host: hosts
                .iter()
                .map(|h| HostRecord {
                    address: h.address.to_string(),
                    name: h.name.clone(),
                    fingerprint: h.fingerprint.to_string(),
                    paired_unix: h.paired,
                })
                .collect(),
        };
        write_toml(&self.path, &file)?;
        Ok(old)
    }
}

/// Holds an exclusive lock on `<file>.lock` until dropped.
fn lock_beside(path: &Path) -> Result<std::fs::File, TrustError> {
    let lock_path = path.with_extension("lock");
    let io = |action, source| TrustError::Io { action, path: lock_path.clone(), source };
    let file = crate::net::files::open_lock(&lock_path).map_err(|e| io("open", e))?;
    file.lock().map_err(|e| io("lock", e))?;
    Ok(file)
}

/// The file's contents, or `None` if there is no file yet.
fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, TrustError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map(Some)
            .map_err(|e| TrustError::Damaged { path: path.to_owned(), reason: e.message().to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TrustError::Io { action: "read", path: path.to_owned(), source }),
    }
}

fn write_toml<T: Serialize>(path: &Path, value: &T) -> Result<(), TrustError> {
    let text = toml::to_string(value)
        .map_err(|e| TrustError::Damaged { path: path.to_owned(), reason: format!("could not encode: {e}") })?;
    let header = "# Written by kumo. `kumo host --list-clients` and `--revoke` read and change it.\n";
    crate::net::files::write_private(path, format!("{header}{text}").as_bytes()).map_err(|source| TrustError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kumo-trust-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_hosts_clients_survive_a_restart_and_a_revocation_from_another_store() {
        let dir = scratch("clients");
        let fp = Fingerprint([7; 32]);
        let store = ClientStore::in_dir(&dir);
        assert_eq!(store.standing(fp).unwrap(), Standing::Unknown);
        store.add("deck", fp).unwrap();
        // Another process (`kumo host --revoke`) with its own store.
        let other = ClientStore::in_dir(&dir);
        assert!(matches!(other.standing(fp).unwrap(), Standing::Paired(c) if c.name == "deck"));
        other.revoke("deck").unwrap();
        assert!(matches!(store.standing(fp).unwrap(), Standing::Revoked(_)), "the running host sees it at once");
        let text = std::fs::read_to_string(dir.join("paired-clients.toml")).unwrap();
        assert!(text.contains("name = \"deck\"") && text.contains("revoked_unix"), "{text}");
        std::fs::write(dir.join("paired-clients.toml"), "[[client]]\nname = 3\n").unwrap();
        let err = store.list().unwrap_err().to_string();
        assert!(err.contains("paired-clients.toml is damaged"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn known_hosts_are_kept_by_address() {
        let dir = scratch("hosts");
        let hosts = KnownHosts::in_dir(&dir.join("client"));
        let addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        assert_eq!(hosts.lookup(addr).unwrap(), None);
        let first = KnownHost { address: addr, name: "den".into(), fingerprint: Fingerprint([1; 32]), paired: 5 };
        assert_eq!(hosts.remember(first.clone()).unwrap(), None);
        let second = KnownHost { fingerprint: Fingerprint([2; 32]), ..first.clone() };
        assert_eq!(hosts.remember(second.clone()).unwrap(), Some(first), "pairing again replaces the entry");
        assert_eq!(hosts.lookup(addr).unwrap(), Some(second));
        assert_eq!(hosts.list().unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).ok();
    }
}
