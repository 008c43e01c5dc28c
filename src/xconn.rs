//! Connecting to an X display, as every X shell of kumo does (the host's capture and input, the
//! shared clipboard on either side): with the X authority of the environment, or, for an X
//! server the host started for a session (`--app`), with that server's cookie.

use x11rb::rust_connection::RustConnection;

/// Connects to `display` (`None`: `$DISPLAY`) with `cookie` (MIT-MAGIC-COOKIE-1) or, without
/// one, the environment's authority; returns the connection and the display's screen. The
/// error is the reason, for a sentence the caller makes.
pub fn connect(display: Option<&str>, cookie: Option<&[u8; 16]>) -> Result<(RustConnection, usize), String> {
    let Some(cookie) = cookie else {
        return x11rb::connect(display).map_err(|e| e.to_string());
    };
    let parsed = x11rb::reexports::x11rb_protocol::parse_display::parse_display(display).map_err(|e| e.to_string())?;
    let mut last = "no address to connect to".to_owned();
    for address in parsed.connect_instruction() {
        match x11rb::rust_connection::DefaultStream::connect(&address) {
            Ok((stream, _)) => {
                let conn = RustConnection::connect_to_stream_with_auth_info(
                    stream,
                    parsed.screen.into(),
                    b"MIT-MAGIC-COOKIE-1".to_vec(),
                    cookie.to_vec(),
                )
                .map_err(|e| e.to_string())?;
                return Ok((conn, usize::from(parsed.screen)));
            }
            Err(err) => last = err.to_string(),
        }
    }
    Err(last)
}
