//! Which OpenH264 kumo encodes and decodes with: the copy built into the binary from source
//! (the `h264-source` feature, on by default), or a shared library loaded at run time: Cisco's
//! binary, whose licence covers the H.264 patent royalties when it is downloaded on the user's
//! machine, or a distribution's build of the same version. packaging/README.md says which the
//! packages use and why.
//!
//! The choice is made once per process and kept: `KUMO_H264_LIBRARY=PATH` names a library;
//! without it a binary with the built-in copy uses that, and one without looks in the places
//! the package's fetch script writes to ([`search_path`]).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openh264::OpenH264API;

/// The environment variable that names a library to load instead of the built-in copy.
pub const LIBRARY_VARIABLE: &str = "KUMO_H264_LIBRARY";

/// The versions whose interface kumo's bindings speak: openh264-sys2 0.9 was generated from
/// openh264's source after 2.6.0 (it reports 2.7.0, and is what `h264-source` builds) and
/// vouches for Cisco's 2.6.0 binaries, both soname .8. The structures kumo fills in changed
/// in earlier versions (Debian 12's 2.3.1 is soname .7), so a library of any other version is
/// refused rather than called.
pub const INTERFACES: [(u32, u32); 2] = [(2, 6), (2, 7)];

/// The file name of Cisco's binary for this machine, as Cisco publishes it (bzip2-compressed,
/// at `http://ciscobinary.openh264.org/NAME.bz2`).
pub const CISCO_FILE: &str = cisco_file();

const fn cisco_file() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "libopenh264-2.6.0-linux64.8.so"
    } else if cfg!(target_arch = "aarch64") {
        "libopenh264-2.6.0-linux-arm64.8.so"
    } else if cfg!(target_arch = "arm") {
        "libopenh264-2.6.0-linux-arm.8.so"
    } else {
        "libopenh264-2.6.0-linux32.8.so"
    }
}

/// SHA-256 of Cisco's 2.6.0 binaries for Linux (the list openh264-sys2 0.9.9 carries, checked
/// against Cisco's published files).
const CISCO_SHA256: [(&str, &str); 4] = [
    ("libopenh264-2.6.0-linux64.8.so", "2f0cde7c6a6abcf5cae76942894ea42897fa677bce4ed6c91a24dd1b041d5f04"),
    ("libopenh264-2.6.0-linux-arm64.8.so", "12e7b33623667cdab0e575170c147b1b36eadb77d0d2aa7ceb5afd3e58902140"),
    ("libopenh264-2.6.0-linux-arm.8.so", "df91866de0e93773019e30a8f2bdee8b15de4abe2bf89a228ae9f064ff1e85bb"),
    ("libopenh264-2.6.0-linux32.8.so", "a46589ccc95df7565ff8b1722d3dead29c0809be28322dc763767e0aa35a6443"),
];

/// Where the H.264 code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Compiled into this binary from openh264's source.
    BuiltIn,
    /// A shared library, with its version and whether it is byte for byte Cisco's binary.
    Library { path: PathBuf, version: (u32, u32, u32), cisco: bool },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BuiltIn => f.write_str("OpenH264 built into kumo"),
            Self::Library { path, version: (a, b, c), cisco } => {
                let whose = if *cisco { "Cisco's OpenH264" } else { "OpenH264" };
                write!(f, "{whose} {a}.{b}.{c} from {}", path.display())
            }
        }
    }
}

static CHOSEN: OnceLock<Result<Source, String>> = OnceLock::new();

/// The places a binary without the built-in copy looks for Cisco's binary, first found wins:
/// the user's data folder (`~/.local/share/kumo/openh264/`), then the package's
/// (`/usr/lib/kumo/openh264/`, where its fetch script writes at install time).
pub fn search_path() -> Vec<PathBuf> {
    let mut places = Vec::new();
    if let Some(dirs) = directories::ProjectDirs::from("", "", "kumo") {
        places.push(dirs.data_dir().join("openh264").join(CISCO_FILE));
    }
    places.push(Path::new("/usr/lib/kumo/openh264").join(CISCO_FILE));
    places
}

/// The H.264 code this process uses, chosen on the first call; the error is a sentence that
/// says what to do.
pub fn source() -> Result<Source, String> {
    CHOSEN
        .get_or_init(|| {
            let chosen = choose();
            if let Ok(library @ Source::Library { cisco, .. }) = &chosen {
                let note =
                    if *cisco { "" } else { " (not Cisco's binary: its patent licence does not cover this copy)" };
                tracing::info!("video codec: {library}{note}");
            }
            chosen
        })
        .clone()
}

/// A new handle on the chosen H.264 code, for one encoder or decoder.
pub fn api() -> Result<OpenH264API, String> {
    match source()? {
        #[cfg(feature = "h264-source")]
        Source::BuiltIn => Ok(OpenH264API::from_source()),
        #[cfg(not(feature = "h264-source"))]
        Source::BuiltIn => Err("this kumo was built without OpenH264".to_owned()),
        Source::Library { path, .. } => {
            ffi::load(&path).map_err(|e| format!("could not load OpenH264 from {}: {e}", path.display()))
        }
    }
}

fn choose() -> Result<Source, String> {
    if let Some(path) = std::env::var_os(LIBRARY_VARIABLE).filter(|p| !p.is_empty()) {
        return check(Path::new(&path));
    }
    if cfg!(feature = "h264-source") {
        return Ok(Source::BuiltIn);
    }
    let places = search_path();
    match places.iter().find(|p| p.is_file()) {
        Some(found) => check(found),
        None => Err(format!(
            "this kumo carries no H.264 code of its own, and Cisco's OpenH264 is not installed \
             (looked for {}): run `sudo /usr/lib/kumo/fetch-openh264` to download it, or set \
             {LIBRARY_VARIABLE} to an OpenH264 2.6 library",
            places.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and "),
        )),
    }
}

/// Loads `path`, reads its version and refuses it unless it is the interface kumo speaks.
pub fn check(path: &Path) -> Result<Source, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!("could not read the OpenH264 library {} ({e}): check {LIBRARY_VARIABLE}", path.display())
    })?;
    let cisco = is_cisco(&bytes);
    let api = ffi::load(path).map_err(|e| {
        format!("{} is not an OpenH264 library kumo can load ({e}): check {LIBRARY_VARIABLE}", path.display())
    })?;
    let version = ffi::version(&api);
    if !INTERFACES.contains(&(version.0, version.1)) {
        return Err(format!(
            "{} is OpenH264 {}.{}.{}, but kumo speaks the interface of 2.6 and 2.7 (it changed \
             between versions): use Cisco's {CISCO_FILE} or a distribution's libopenh264 2.6",
            path.display(),
            version.0,
            version.1,
            version.2,
        ));
    }
    Ok(Source::Library { path: path.to_owned(), version, cisco })
}

#[expect(unsafe_code, reason = "loading a shared library and asking its version are foreign calls")]
mod ffi {
    use openh264::OpenH264API;

    /// Loads the library at `path`. Loading runs its initialisers: the file was named by the
    /// user or written by kumo's fetch script, and nothing else is called before [`version`]
    /// has been checked against the interface the bindings were made from.
    pub(super) fn load(path: &std::path::Path) -> Result<OpenH264API, openh264_sys2::Error> {
        // SAFETY: as above; the functions are looked up by name and their absence is an error.
        unsafe { OpenH264API::from_blob_path_unchecked(path) }
    }

    /// The library's version: `WelsGetCodecVersion` has had the same signature since 1.0.
    pub(super) fn version(api: &OpenH264API) -> (u32, u32, u32) {
        // SAFETY: a call without arguments that returns four integers, in every version.
        let v = unsafe { openh264_sys2::API::WelsGetCodecVersion(api) };
        (v.uMajor, v.uMinor, v.uRevision)
    }
}

/// Whether `bytes` are one of Cisco's published 2.6.0 binaries.
pub fn is_cisco(bytes: &[u8]) -> bool {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex = digest.as_ref().iter().fold(String::with_capacity(64), |mut hex, b| {
        use std::fmt::Write as _;
        write!(hex, "{b:02x}").ok();
        hex
    });
    CISCO_SHA256.iter().any(|(_, sum)| *sum == hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cisco_file_names_this_machines_binary_and_its_sum_is_known() {
        assert!(CISCO_SHA256.iter().any(|(name, _)| *name == CISCO_FILE));
        assert!(!is_cisco(b"not a library"));
    }

    #[test]
    fn a_file_that_is_not_a_library_is_refused_with_a_sentence() {
        let dir = std::env::temp_dir().join(format!("kumo-h264-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("libopenh264.so");
        std::fs::write(&fake, b"\x7fELF but not really").unwrap();
        let err = check(&fake).unwrap_err();
        assert!(err.contains("is not an OpenH264 library kumo can load"), "{err}");
        let err = check(&dir.join("missing.so")).unwrap_err();
        assert!(err.contains("could not read the OpenH264 library"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
