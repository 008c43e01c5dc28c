//! A virtual X display for window tests: the tools, a private runtime folder, screenshots.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub(crate) fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

/// Whether the tools are there; fails under CI=true when they are not.
pub(crate) fn tools_present() -> bool {
    let missing: Vec<_> = ["xvfb-run", "import", "convert", "xdotool"].into_iter().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI needs {missing:?} for the window tests: run `make deps-test`"
    );
    eprintln!("skipping: {missing:?} not installed (make deps-test)");
    false
}

/// A private `XDG_RUNTIME_DIR` (Mesa and winit want one, mode 0700).
pub(crate) fn runtime_dir(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let xdg = dir.join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
    xdg
}

/// A binary PPM (P6) as (width, height, RGB bytes).
pub(crate) fn read_ppm(path: &Path) -> (usize, usize, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..pos]).into_owned());
    }
    assert_eq!(fields[0], "P6");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let data = bytes[pos + 1..].to_vec();
    assert_eq!(data.len(), w * h * 3);
    (w, h, data)
}

/// An Xvfb server of 1920x1080 on a display of its own; stopped on drop.
pub(crate) struct Xvfb {
    child: Child,
    pub(crate) display: String,
}

impl Xvfb {
    pub(crate) fn start() -> Self {
        use std::io::BufRead as _;
        // Xvfb picks a free display itself and writes its number once it accepts clients
        // (-displayfd): no guessing, no race with another test's server.
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb did not start (make deps-test installs it)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).ok();
        let number = line.trim();
        assert!(
            !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()),
            "Xvfb did not say its display: {line:?}"
        );
        Self { child, display: format!(":{number}") }
    }

    /// A command that talks to this display.
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DISPLAY", &self.display);
        cmd
    }

    /// The whole screen as RGB, and saved as `png` for a person to look at.
    pub(crate) fn screenshot(&self, png: &Path) -> (usize, usize, Vec<u8>) {
        let ok = self.command("import").args(["-window", "root"]).arg(png).status().unwrap();
        assert!(ok.success(), "import could not take a screenshot");
        let ppm = png.with_extension("ppm");
        assert!(Command::new("convert").arg(png).arg(&ppm).status().unwrap().success());
        read_ppm(&ppm)
    }

    /// xdotool on this display.
    pub(crate) fn xdotool(&self, args: &[&str]) {
        let ok = self.command("xdotool").args(args).status().unwrap();
        assert!(ok.success(), "xdotool {args:?} failed");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Where a test keeps its files and screenshots.
pub(crate) fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
