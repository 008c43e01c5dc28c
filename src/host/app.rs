//! `kumo host --app COMMAND`: each session gets a private X server of the stream's size
//! (Xvfb, or a command the operator gives), the program started on it, and everything ended
//! with the session.
//!
//! - **Private.** The server listens on a Unix socket only and admits only holders of a
//!   random cookie (MIT-MAGIC-COOKIE-1, in a 0600 file in the host's runtime folder): the
//!   program and the host. Nothing appears on the host's own screen.
//! - **Cleaned up, whatever happens.** The server and the program are children of the host,
//!   started through `setpriv --pdeathsig KILL`, so the kernel kills them if the host dies,
//!   even by SIGKILL; the program runs in a process group of its own, which the session's end
//!   signals whole (TERM, then KILL), so its children go too.
//! - **Its own sound**: a `PulseAudio` null sink per session (`PULSE_SINK` for the program),
//!   whose monitor the host records; unloaded with the session, and a host started later
//!   unloads those of hosts that were killed.
//! - **Runs as the host's user**, with the host's environment plus `DISPLAY` and
//!   `XAUTHORITY`: `--app` runs what the operator wrote, never anything a client sends.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use thiserror::Error;
use tokio::process::{Child, Command};

/// How to start a session's program.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The program, as a shell command line (`sh -c`).
    pub command: String,
    /// The X server to start instead of Xvfb, with `{display}`, `{width}`, `{height}` and
    /// `{auth}` replaced (`None`: Xvfb).
    pub server: Option<String>,
}

#[derive(Debug, Error)]
pub enum AppError {
    #[error(
        "could not start the session's X server (`{command}`): {reason}. Is Xvfb installed (Debian: apt install xvfb)?"
    )]
    Server { command: String, reason: String },
    #[error("the session's X server did not come up within {} s", SERVER_WAIT.as_secs())]
    ServerSlow,
    #[error("could not start the program `{command}`: {reason}")]
    Program { command: String, reason: String },
    #[error("could not prepare the session's X authority file: {0}")]
    Auth(String),
}

/// How long a new X server may take to open its socket.
const SERVER_WAIT: Duration = Duration::from_secs(5);
/// Display numbers tried for a session's server.
const DISPLAYS: std::ops::Range<u32> = 100..200;
/// How long the program has to exit after TERM before it is killed.
const TERM_WAIT: Duration = Duration::from_secs(2);

/// A session's X server and program.
pub struct App {
    /// `:N`.
    pub display: String,
    /// The server's cookie.
    pub cookie: [u8; 16],
    auth: PathBuf,
    server: Child,
    program: Child,
    /// The sink the program plays into (none: the sound server refused one, or there is none;
    /// the session is then silent).
    pub sink: Option<crate::host::pulse::PrivateSink>,
}

impl App {
    /// Starts a server of `width` × `height` and the program on it.
    pub async fn launch(config: &AppConfig, width: u16, height: u16) -> Result<Self, AppError> {
        let cookie = random_cookie().map_err(AppError::Auth)?;
        let runtime = crate::config::runtime_dir();
        crate::net::files::create_private_dir(&runtime).map_err(|e| AppError::Auth(e.to_string()))?;
        let mut last = String::new();
        for number in DISPLAYS {
            let name = format!(":{number}");
            if !display_free(number) {
                continue;
            }
            let auth = runtime.join(format!("xauth-{number}"));
            write_authority(&auth, number, &cookie).map_err(AppError::Auth)?;
            let command = server_command(config.server.as_deref(), &name, width, height, &auth);
            let mut server = spawn_orphan_proof(&command, &[])
                .map_err(|e| AppError::Server { command: command.join(" "), reason: e.to_string() })?;
            match wait_for_socket(number, &mut server).await {
                Ok(()) => {
                    let sink = match crate::host::pulse::PrivateSink::load(&number.to_string()) {
                        Ok(sink) => Some(sink),
                        Err(err) => {
                            tracing::warn!("{err}; the session streams without sound");
                            None
                        }
                    };
                    let mut env = vec![("DISPLAY", name.clone()), ("XAUTHORITY", auth.display().to_string())];
                    if let Some(sink) = &sink {
                        env.push(("PULSE_SINK", sink.name.clone()));
                    }
                    let shell = vec!["sh".to_owned(), "-c".to_owned(), config.command.clone()];
                    let program = match spawn_orphan_proof(&shell, &env) {
                        Ok(program) => program,
                        Err(e) => {
                            return Err(AppError::Program { command: config.command.clone(), reason: e.to_string() });
                        }
                    };
                    tracing::info!(display = %name, width, height, program = %config.command, "started the session's display and program");
                    return Ok(Self { display: name, cookie, auth, server, program, sink });
                }
                Err(reason) => {
                    std::fs::remove_file(&auth).ok();
                    last = reason;
                    // Another server took that number meanwhile, or this one failed: the next.
                    if server.try_wait().ok().flatten().is_none() {
                        server.start_kill().ok();
                        return Err(AppError::ServerSlow);
                    }
                }
            }
        }
        Err(AppError::Server { command: "Xvfb".into(), reason: format!("no display number was free ({last})") })
    }

    /// Waits until the program exits; what it exited with, in words.
    pub async fn exited(&mut self) -> String {
        match self.program.wait().await {
            Ok(status) if status.success() => "the program exited".to_owned(),
            Ok(status) => match status.code() {
                Some(code) => format!("the program exited with status {code}"),
                None => format!("the program ended: {status}"),
            },
            Err(err) => format!("the program could not be watched: {err}"),
        }
    }

    /// Ends the program (its whole process group: TERM, then KILL after 2 s) and the server.
    pub async fn end(mut self) {
        if let Some(pid) = self.program.id() {
            signal_group(pid, "TERM");
            if tokio::time::timeout(TERM_WAIT, self.program.wait()).await.is_err() {
                signal_group(pid, "KILL");
            }
        }
        self.program.start_kill().ok();
        self.server.start_kill().ok();
        self.program.wait().await.ok();
        self.server.wait().await.ok();
        self.sink.take();
        std::fs::remove_file(&self.auth).ok();
        let name = &self.display;
        tracing::info!(display = %name, "the session's display and program are gone");
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // Ended without `end` (a panic, a cancelled task): kill what is left.
        if let Some(pid) = self.program.id() {
            signal_group(pid, "KILL");
        }
        std::fs::remove_file(&self.auth).ok();
    }
}

/// Signals the process group led by `pid` (the program runs as one).
fn signal_group(pid: u32, signal: &str) {
    std::process::Command::new("kill")
        .args([format!("-{signal}"), "--".to_owned(), format!("-{pid}")])
        .stderr(Stdio::null())
        .status()
        .ok();
}

/// Starts `argv` so that it dies with the host: `setpriv --pdeathsig KILL` makes the kernel
/// send it SIGKILL when the host's thread that started it ends (the runtime's workers live as
/// long as the host), and the host's handle kills it when dropped. It leads a process group
/// of its own.
fn spawn_orphan_proof(argv: &[String], env: &[(&str, String)]) -> std::io::Result<Child> {
    let mut command = Command::new("setpriv");
    command
        .args(["--pdeathsig", "KILL", "--"])
        .args(argv)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    command.spawn()
}

/// The server's command line.
fn server_command(custom: Option<&str>, display: &str, width: u16, height: u16, auth: &std::path::Path) -> Vec<String> {
    let auth = auth.display().to_string();
    match custom {
        Some(template) => template
            .split_whitespace()
            .map(|word| {
                word.replace("{display}", display)
                    .replace("{width}", &width.to_string())
                    .replace("{height}", &height.to_string())
                    .replace("{auth}", &auth)
            })
            .collect(),
        None => [
            "Xvfb",
            display,
            "-screen",
            "0",
            &format!("{width}x{height}x24"),
            "-nolisten",
            "tcp",
            "-auth",
            &auth,
            "-noreset",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
    }
}

/// Whether display `number` looks free: no lock file, or one left by a server that is gone
/// (an X server takes over a stale lock and socket itself).
fn display_free(number: u32) -> bool {
    match std::fs::read_to_string(format!("/tmp/.X{number}-lock")) {
        Ok(text) => text.trim().parse::<u32>().is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()),
        Err(err) => err.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Waits for server `number`'s socket, or for the server to fail.
async fn wait_for_socket(number: u32, server: &mut Child) -> Result<(), String> {
    // The lock names the server once it owns the display (a stale socket may be there before).
    let lock = PathBuf::from(format!("/tmp/.X{number}-lock"));
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
    let pid = server.id().unwrap_or(0);
    let deadline = tokio::time::Instant::now() + SERVER_WAIT;
    loop {
        let owned = std::fs::read_to_string(&lock).is_ok_and(|t| t.trim().parse::<u32>().ok() == Some(pid));
        if owned && socket.exists() {
            return Ok(());
        }
        if let Ok(Some(status)) = server.try_wait() {
            return Err(format!("it exited: {status}"));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err("it did not open its socket".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn random_cookie() -> Result<[u8; 16], String> {
    use ring::rand::SecureRandom as _;
    let mut cookie = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut cookie).map_err(|_| "the system's random number source failed")?;
    Ok(cookie)
}

/// Writes an X authority file holding `cookie` for display `number` on this machine (the
/// format of Xau: family, address, display number, name and data, each length-prefixed).
fn write_authority(path: &std::path::Path, number: u32, cookie: &[u8; 16]) -> Result<(), String> {
    const FAMILY_WILD: u16 = 0xffff;
    let mut bytes = Vec::new();
    let mut field = |data: &[u8]| {
        bytes.extend_from_slice(&(data.len() as u16).to_be_bytes());
        bytes.extend_from_slice(data);
    };
    let mut out = FAMILY_WILD.to_be_bytes().to_vec();
    field(b"");
    field(number.to_string().as_bytes());
    field(b"MIT-MAGIC-COOKIE-1");
    field(cookie);
    out.extend_from_slice(&bytes);
    crate::net::files::write_private(path, &out).map_err(|e| e.to_string())
}
