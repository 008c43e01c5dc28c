//! Private files: the host's and the client's keys, and the lists of paired clients and
//! hosts. A revocation is a write to such a file, and a key must never be written where
//! someone else chose, so every write here:
//! - goes to a new file of an unpredictable name, created exclusively and never through a
//!   link (`O_CREAT | O_EXCL | O_NOFOLLOW`), readable by its owner only, then is renamed into
//!   place (whole or not at all);
//! - is flushed, and so is the folder after the rename, so that it survives a power cut;
//! - happens only in a folder that no other user can write (which could swap files under it).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Makes `dir` (and its parents) if missing, readable by its owner only, and checks that no
/// other user can write to it.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    check_private_dir(dir)
}

/// Refuses a folder other users may write to, or that belongs to another user.
pub fn check_private_dir(dir: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    // This process's user: the owner of its /proc entry (Linux), checked where it exists.
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let mode = meta.permissions().mode() & 0o7777;
    if me.is_some_and(|me| meta.uid() != me) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} belongs to another user (uid {}); kumo keeps keys only in a folder of its own user's",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    if mode & 0o022 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "other users can write to {} (mode {mode:o}), and could replace kumo's keys there; run `chmod go-w {}`",
                dir.display(),
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Writes `bytes` to `path`, readable by its owner only, whole or not at all.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary_name(path)?;
    write_private_via(path, &tmp, bytes)
}

/// `write_private` through the temporary file `tmp` (tests plant things there).
fn write_private_via(path: &Path, tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    check_private_dir(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(tmp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all()).and_then(|()| std::fs::rename(tmp, path));
    if written.is_err() {
        std::fs::remove_file(tmp).ok();
    }
    written?;
    // The rename is in the folder: flush it too.
    std::fs::File::open(dir)?.sync_all()
}

/// A name beside `path` that nobody can guess: `.NAME.RANDOM.tmp`.
fn temporary_name(path: &Path) -> std::io::Result<PathBuf> {
    use ring::rand::SecureRandom as _;
    let mut random = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| std::io::Error::other("the system's random number source failed"))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(path.with_file_name(format!(".{name}.{:016x}.tmp", u64::from_le_bytes(random))))
}

/// Opens (making it if missing) a lock file, never through a link.
pub fn open_lock(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Warns when a key file can be read by other users.
pub fn warn_if_others_can_read(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "other users can read the private key {} (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kumo-files-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        create_private_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn a_link_planted_at_the_temporary_name_is_not_followed() {
        let dir = scratch("link");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        let key = dir.join("host-key.der");
        let tmp = dir.join(".host-key.der.planted.tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        assert!(write_private_via(&key, &tmp, b"secret").is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert!(!key.exists());
        // The names an older kumo used (`host-key.tmpPID`) lead nowhere either.
        std::os::unix::fs::symlink(&victim, key.with_extension(format!("tmp{}", std::process::id()))).unwrap();
        write_private(&key, b"secret").unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), b"secret");
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        // A lock file is not opened through a link.
        let lock = dir.join("host.lock");
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        assert!(open_lock(&lock).is_err());
        // No temporary file of its own is left behind.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp") && e.path() != tmp)
            .collect();
        assert!(left.is_empty(), "{left:?}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_folder_others_can_write_is_refused() {
        let dir = scratch("open");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = write_private(&dir.join("key"), b"x").unwrap_err();
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        assert!(create_private_dir(&dir).is_err());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        write_private(&dir.join("key"), b"x").unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }
}
