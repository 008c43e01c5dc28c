//! `scripts/package.sh`, what `make package` runs, on this test build's binary: the .deb is
//! unpacked into a scratch root with `dpkg-deb -x` and every file it must install is looked at
//! there (the binary runs, the menu entry names a command and an icon that exist, the kiosk
//! unit runs `kumo kiosk` and restarts it); the control fields and checksums are read back;
//! the tarball is listed and its binary run.
//!
//! Needs dpkg-deb, tar and gzip, which every Debian install has. Without dpkg-deb the test
//! fails under CI=true and is skipped with a note elsewhere. `desktop-file-validate`
//! (desktop-file-utils) also checks the menu entry where it is installed. The packages stay in
//! target/tmp/kumo-package/ for a person to look at when a check fails.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap too, not only #[test] functions")]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The files the .deb installs, relative to `/`.
const DEB_FILES: [&str; 8] = [
    "usr/bin/kumo",
    "usr/share/applications/kumo.desktop",
    "usr/share/icons/hicolor/256x256/apps/kumo.png",
    "usr/share/icons/hicolor/scalable/apps/kumo.svg",
    "usr/share/doc/kumo/config.example.toml",
    "usr/share/doc/kumo/README.md",
    "lib/systemd/system/kumo-kiosk.service",
    "usr/lib/kumo/fetch-openh264",
];

/// Installed files that are copies of a file in the repository, byte for byte.
const COPIES: [(&str, &str); 7] = [
    ("usr/share/applications/kumo.desktop", "packaging/kumo.desktop"),
    ("usr/share/icons/hicolor/256x256/apps/kumo.png", "assets/kumo.png"),
    ("usr/share/icons/hicolor/scalable/apps/kumo.svg", "assets/kumo.svg"),
    ("usr/share/doc/kumo/config.example.toml", "packaging/config.example.toml"),
    ("usr/share/doc/kumo/README.md", "README.md"),
    ("lib/systemd/system/kumo-kiosk.service", "packaging/kumo-kiosk.service"),
    ("usr/lib/kumo/fetch-openh264", "packaging/fetch-openh264"),
];

/// The files the tarball holds, relative to its top folder `kumo-VERSION/`.
const TARBALL_FILES: [&str; 12] = [
    "bin/kumo",
    "bin/fetch-openh264",
    "packaging/fetch-openh264",
    "INSTALL.txt",
    "README.md",
    "assets/kumo.svg",
    "assets/kumo.png",
    "assets/README.md",
    "packaging/README.md",
    "packaging/config.example.toml",
    "packaging/kumo.desktop",
    "packaging/kumo-kiosk.service",
];

struct Packages {
    dir: PathBuf,
    deb: PathBuf,
    tarball: PathBuf,
    /// The .deb's files, unpacked by `dpkg-deb -x`.
    root: PathBuf,
    arch: String,
}

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).unwrap()
}

/// The version as the package names it: Cargo's, with a pre-release's `-` made dpkg's `~`.
fn deb_version() -> String {
    env!("CARGO_PKG_VERSION").replace('-', "~")
}

/// Builds both packages once for all the tests (the script takes a few seconds); `None` where
/// dpkg-deb is missing, which fails under CI=true.
fn packages() -> Option<&'static Packages> {
    static PACKAGES: OnceLock<Option<Packages>> = OnceLock::new();
    PACKAGES.get_or_init(build).as_ref()
}

fn build() -> Option<Packages> {
    let missing: Vec<_> = ["dpkg-deb", "dpkg", "tar", "gzip"].into_iter().filter(|t| !have(t)).collect();
    if !missing.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs {missing:?} for the packaging test (Debian's dpkg, tar and gzip)"
        );
        eprintln!("skipping: {missing:?} not installed (the packaging test needs Debian's dpkg)");
        return None;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kumo-package");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let out_dir = dir.join("out");
    // No VERSION argument: the script takes Cargo.toml's, as `make package` relies on.
    let made = stdout(
        Command::new("bash").arg(repo().join("scripts/package.sh")).arg(env!("CARGO_BIN_EXE_kumo")).arg(&out_dir),
    );
    let arch = stdout(Command::new("dpkg").arg("--print-architecture")).trim().to_owned();
    let deb = out_dir.join(format!("kumo_{}_{arch}.deb", deb_version()));
    let tarball = out_dir.join(format!("kumo-{}-{arch}.tar.gz", env!("CARGO_PKG_VERSION")));
    for file in [&deb, &tarball] {
        assert!(file.is_file(), "package.sh did not make {}; it said:\n{made}", file.display());
        assert!(
            made.contains(&file.display().to_string()),
            "package.sh does not say it made {}:\n{made}",
            file.display()
        );
    }
    let root = dir.join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    Some(Packages { dir, deb, tarball, root, arch })
}

fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 == 0o111)
}

/// `KEY=value` lines of an INI-style file (a .desktop entry, a systemd unit), in order.
fn ini_values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines().filter_map(|line| line.strip_prefix(key)?.strip_prefix('=')).map(str::trim).collect()
}

fn one_value<'a>(text: &'a str, key: &str) -> &'a str {
    let values = ini_values(text, key);
    assert_eq!(values.len(), 1, "expected one {key}= line, found {values:?} in:\n{text}");
    values[0]
}

#[test]
fn deb_installs_every_file_and_the_binary_runs_from_the_scratch_root() {
    let Some(p) = packages() else { return };
    for file in DEB_FILES {
        assert!(p.root.join(file).is_file(), "the .deb does not install /{file} (unpacked in {})", p.root.display());
    }
    for (installed, source) in COPIES {
        assert!(
            std::fs::read(p.root.join(installed)).unwrap() == std::fs::read(repo().join(source)).unwrap(),
            "/{installed} in the .deb is not a copy of {source}"
        );
    }
    let kumo = p.root.join("usr/bin/kumo");
    assert!(
        is_executable(&kumo),
        "/usr/bin/kumo is not executable: {:?}",
        kumo.metadata().map(|m| format!("{:o}", m.permissions().mode()))
    );
    let version = stdout(Command::new(&kumo).arg("--version"));
    assert_eq!(version.trim(), format!("kumo {}", env!("CARGO_PKG_VERSION")));
    let help = stdout(Command::new(&kumo).arg("--help"));
    for command in ["demo", "host", "connect"] {
        assert!(help.contains(command), "the packaged kumo's --help does not list `{command}`:\n{help}");
    }
}

#[test]
fn deb_files_belong_to_root_and_match_their_checksums() {
    let Some(p) = packages() else { return };
    let listing = stdout(Command::new("dpkg-deb").arg("--contents").arg(&p.deb));
    let mut entries = 0;
    for line in listing.lines() {
        let mut columns = line.split_whitespace();
        let (mode, owner) = (columns.next().unwrap(), columns.next().unwrap());
        assert_eq!(owner, "root/root", "not owned by root in the .deb: {line}");
        if mode.starts_with('d') {
            assert_eq!(mode, "drwxr-xr-x", "a directory the .deb would make with odd permissions: {line}");
        }
        entries += 1;
    }
    assert!(entries > DEB_FILES.len(), "{listing}");

    let control = p.dir.join("control");
    run(Command::new("dpkg-deb").arg("--control").arg(&p.deb).arg(&control));
    let sums = std::fs::read_to_string(control.join("md5sums")).unwrap();
    for file in DEB_FILES {
        assert!(sums.lines().any(|l| l.ends_with(&format!("  {file}"))), "md5sums does not list {file}:\n{sums}");
    }
    run(Command::new("md5sum")
        .args(["--check", "--quiet", "--strict"])
        .arg(control.join("md5sums"))
        .current_dir(&p.root));
}

#[test]
fn control_fields_describe_the_package() {
    let Some(p) = packages() else { return };
    let field = |name: &str| stdout(Command::new("dpkg-deb").arg("--field").arg(&p.deb).arg(name)).trim().to_owned();
    assert_eq!(field("Package"), "kumo");
    assert_eq!(field("Version"), deb_version());
    assert_eq!(field("Architecture"), p.arch);
    assert_eq!(field("Section"), "games");
    assert_eq!(field("Priority"), "optional");
    let maintainer = field("Maintainer");
    assert!(maintainer.contains(" <") && maintainer.ends_with('>'), "Maintainer is not `Name <address>`: {maintainer}");
    let description = field("Description");
    assert!(description.lines().count() > 1 && description.contains("cloud game streaming"), "{description}");
    let installed_kib: u64 = field("Installed-Size").parse().unwrap();
    let binary_kib = p.root.join("usr/bin/kumo").metadata().unwrap().len() / 1024;
    assert!(installed_kib >= binary_kib, "Installed-Size {installed_kib} KiB is less than the binary's {binary_kib}");

    let depends = field("Depends");
    let clauses: Vec<&str> = depends.split(',').map(str::trim).collect();
    // A clause is `name`, `name (>= version)` or alternatives `a | b`.
    let names = |clause: &str| -> Vec<String> {
        clause.split('|').map(|alt| alt.split_whitespace().next().unwrap_or_default().to_owned()).collect()
    };
    for lib in ["libasound2", "libudev1", "libvulkan1", "libc6"] {
        assert!(clauses.iter().any(|c| names(c) == [lib]), "Depends lacks {lib}: {depends}");
    }
    assert!(
        clauses.iter().any(|c| names(c) == ["mesa-vulkan-drivers", "vulkan-icd"]),
        "Depends lacks `mesa-vulkan-drivers | vulkan-icd`: {depends}"
    );
}

#[test]
fn desktop_entry_starts_the_demo_with_the_packaged_icon() {
    let Some(p) = packages() else { return };
    let path = p.root.join("usr/share/applications/kumo.desktop");
    let entry = std::fs::read_to_string(&path).unwrap();
    assert_eq!(entry.lines().next(), Some("[Desktop Entry]"));
    assert_eq!(one_value(&entry, "Type"), "Application");
    assert_eq!(one_value(&entry, "Exec"), "kumo demo");
    assert_eq!(one_value(&entry, "Terminal"), "false");
    assert!(one_value(&entry, "Categories").split(';').any(|c| c == "Game"), "{entry}");
    let icon = one_value(&entry, "Icon");
    assert_eq!(icon, "kumo");

    // The icon theme lookup finds Icon=kumo as these two files.
    let png = std::fs::read(p.root.join(format!("usr/share/icons/hicolor/256x256/apps/{icon}.png"))).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png[12..16] == *b"IHDR", "kumo.png is not a PNG");
    let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((size(16), size(20)), (256, 256), "the 256x256 icon has the wrong size");
    let svg =
        std::fs::read_to_string(p.root.join(format!("usr/share/icons/hicolor/scalable/apps/{icon}.svg"))).unwrap();
    assert!(svg.contains("<svg") && svg.contains("viewBox=\"0 0 256 256\"") && svg.trim_end().ends_with("</svg>"));

    if have("desktop-file-validate") {
        let out = run(Command::new("desktop-file-validate").arg(&path));
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(said.trim().is_empty(), "desktop-file-validate has remarks on kumo.desktop:\n{said}");
    } else {
        eprintln!("not validating kumo.desktop: desktop-file-validate (desktop-file-utils) is not installed");
    }
}

#[test]
fn kiosk_unit_runs_kumo_kiosk_under_cage_and_always_restarts_it() {
    let Some(p) = packages() else { return };
    let unit = std::fs::read_to_string(p.root.join("lib/systemd/system/kumo-kiosk.service")).unwrap();
    for section in ["[Unit]", "[Service]", "[Install]"] {
        assert!(unit.lines().any(|l| l == section), "kumo-kiosk.service has no {section} section");
    }
    let exec = one_value(&unit, "ExecStart");
    assert!(exec.starts_with("/usr/bin/cage "), "ExecStart does not start cage: {exec}");
    assert!(exec.ends_with(" /usr/bin/kumo kiosk"), "ExecStart does not run /usr/bin/kumo kiosk: {exec}");
    assert_eq!(one_value(&unit, "Restart"), "always");
    assert_eq!(one_value(&unit, "RestartSec"), "2");
    assert_eq!(one_value(&unit, "User"), "kumo-kiosk");
    assert_eq!(one_value(&unit, "TTYPath"), "/dev/tty1");
    assert_eq!(one_value(&unit, "PAMName"), "login");
    assert!(
        ini_values(&unit, "After").iter().any(|a| a.split_whitespace().any(|u| u == "systemd-user-sessions.service"))
    );
}

#[test]
fn tarball_holds_the_binary_assets_and_packaging_under_one_folder() {
    let Some(p) = packages() else { return };
    let top = format!("kumo-{}/", env!("CARGO_PKG_VERSION"));
    let listing = stdout(Command::new("tar").arg("tzf").arg(&p.tarball));
    for path in listing.lines() {
        assert!(path.starts_with(&top), "{path} is outside the tarball's top folder {top}");
    }
    for file in TARBALL_FILES {
        let path = format!("{top}{file}");
        assert!(listing.lines().any(|l| l == path), "the tarball lacks {path}:\n{listing}");
    }

    let unpacked = p.dir.join("tarball");
    std::fs::create_dir_all(&unpacked).unwrap();
    run(Command::new("tar").arg("xzf").arg(&p.tarball).arg("-C").arg(&unpacked));
    let kumo = unpacked.join(&top).join("bin/kumo");
    assert!(is_executable(&kumo), "bin/kumo in the tarball is not executable");
    let version = stdout(Command::new(&kumo).arg("--version"));
    assert_eq!(version.trim(), format!("kumo {}", env!("CARGO_PKG_VERSION")));
    let install = std::fs::read_to_string(unpacked.join(&top).join("INSTALL.txt")).unwrap();
    assert!(install.contains(env!("CARGO_PKG_VERSION")) && install.contains("bin/kumo"), "{install}");
}

#[test]
fn the_deb_fetches_ciscos_openh264_at_install_and_refuses_any_other_file() {
    let Some(p) = packages() else { return };
    // The maintainer scripts: postinst fetches (and does not fail the install), postrm removes.
    let control = p.dir.join("scripts");
    run(Command::new("dpkg-deb").arg("--control").arg(&p.deb).arg(&control));
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(
        is_executable(&control.join("postinst")) && postinst.contains("/usr/lib/kumo/fetch-openh264 ||"),
        "{postinst}"
    );
    let postrm = std::fs::read_to_string(control.join("postrm")).unwrap();
    assert!(postrm.contains("rm -rf /usr/lib/kumo/openh264"), "{postrm}");
    for script in ["postinst", "postrm"] {
        run(Command::new("sh").arg("-n").arg(control.join(script)));
    }

    // The packaged fetch script, pointed at a "mirror" (a folder) whose file is not Cisco's:
    // refused, and nothing is left where kumo looks.
    let fetch = p.root.join("usr/lib/kumo/fetch-openh264");
    let mirror = p.dir.join("mirror");
    let dest = p.dir.join("fetched");
    std::fs::create_dir_all(&mirror).unwrap();
    let name = stdout(
        Command::new("sh")
            .arg("-c")
            .arg(format!("grep -o 'libopenh264-2.6.0-[a-z0-9-]*.8.so' {} | head -n 1", fetch.display())),
    );
    let fake = mirror.join(name.trim());
    std::fs::write(&fake, b"not Cisco's library").unwrap();
    if !have("bzip2") || !have("curl") {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI needs curl and bzip2 for the fetch script's test");
        return;
    }
    run(Command::new("bzip2").arg("-f").arg(&fake));
    let refused = Command::new(&fetch)
        .arg(&dest)
        .env("KUMO_OPENH264_URL", format!("file://{}", mirror.display()))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("its SHA-256 differs); nothing was installed"), "{said}");
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0, "the refused download was left in {}", dest.display());
    // A mirror without the file: a sentence that says to retry.
    let missing = Command::new(&fetch)
        .arg(&dest)
        .env("KUMO_OPENH264_URL", format!("file://{}/nothing-here", mirror.display()))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && said.contains("could not download") && said.contains("run this again"),
        "{said}"
    );
}
