//! Finding and reading the config file (the format and its checks are `core::config`).
//!
//! The file is `config.toml` in the platform's config directory (`~/.config/kumo/` on Linux,
//! following `XDG_CONFIG_HOME`), or the file `--config` names. A missing default file means
//! defaults; a missing named file is an error.

use crate::core::config::Settings;
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// Where kumo looks for its config file when none is named.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "kumo").map(|dirs| dirs.config_dir().join("config.toml"))
}

/// Where `kumo host` keeps its certificate and key when `--identity` names no folder
/// (`~/.local/share/kumo/host/` on Linux, following `XDG_DATA_HOME`).
pub fn default_identity_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "kumo").map(|dirs| dirs.data_dir().join("host"))
}

/// Where a client keeps its certificate and the hosts it paired with
/// (`~/.local/share/kumo/client/` on Linux, following `XDG_DATA_HOME`).
pub fn default_client_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "kumo").map(|dirs| dirs.data_dir().join("client"))
}

/// Where a host keeps what lives only while it runs (the X authority files of `--app`
/// sessions): `$XDG_RUNTIME_DIR/kumo`, else a folder of this process's own under the system's
/// temporary folder.
pub fn runtime_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "kumo")
        .and_then(|dirs| dirs.runtime_dir().map(Path::to_path_buf))
        .unwrap_or_else(|| std::env::temp_dir().join(format!("kumo-{}", std::process::id())))
}

/// Reads the named file, or the default one if it exists; returns the settings and the file
/// they came from.
pub fn load(named: Option<&Path>) -> anyhow::Result<(Settings, Option<PathBuf>)> {
    let path = match named {
        Some(p) => p.to_path_buf(),
        None => match default_path() {
            Some(p) if p.exists() => p,
            _ => return Ok((Settings::default(), None)),
        },
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("could not read the config file {}", path.display()))?;
    let settings = Settings::parse(&text, &path.display().to_string())?;
    tracing::info!("settings from {}", path.display());
    Ok((settings, Some(path)))
}
