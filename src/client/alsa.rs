//! ALSA's own messages in kumo's log, not on the console. alsa-lib prints every error it meets
//! to standard error through a process-wide handler (on a machine without a sound card, eight
//! lines of `ALSA lib conf.c:5180:(_snd_config_evaluate) function snd_func_card_inum returned
//! error` for each try at opening the default device). The handler's C type is variadic,
//! which stable Rust cannot define, so a few lines of C (`alsa.c`, built by build.rs) format
//! the message and hand it here as one string, logged at debug level under `kumo::alsa`
//! (`RUST_LOG=kumo::alsa=debug` shows them). kumo says what the failure means in its own
//! sentence (`client::audio`).

use std::ffi::{c_char, c_int};

#[expect(unsafe_code, reason = "the handler is installed through alsa-lib's C interface")]
mod ffi {
    use std::ffi::{c_char, c_int};

    unsafe extern "C" {
        /// From `alsa.c`: sends every later ALSA message to `sink`; 0 on success.
        pub(super) fn kumo_alsa_route_errors(sink: extern "C" fn(*const c_char, c_int, *const c_char)) -> c_int;
    }

    /// Installs the handler.
    pub(super) fn route(sink: extern "C" fn(*const c_char, c_int, *const c_char)) -> c_int {
        // SAFETY: the function only stores a plain function pointer and calls alsa-lib's
        // snd_lib_error_set_handler, which takes no other argument and may be called at any
        // time; `sink` is a Rust `extern "C"` function that lives for the whole process.
        unsafe { kumo_alsa_route_errors(sink) }
    }

    /// The text of a C string the handler passes, or "" for a null pointer.
    pub(super) fn text(ptr: *const c_char) -> String {
        if ptr.is_null() {
            return String::new();
        }
        // SAFETY: `alsa.c` passes a NUL-terminated buffer (vsnprintf always terminates it,
        // or alsa-lib's own function name), valid for the duration of the call.
        unsafe { std::ffi::CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
    }
}

/// Where each routed message goes: the debug log. Never unwinds (a panic in an `extern "C"`
/// function aborts the process; nothing here can panic). ALSA reports an underrun from the
/// device's own thread: nothing is copied unless the debug log is on.
extern "C" fn to_log(function: *const c_char, err: c_int, message: *const c_char) {
    if !tracing::enabled!(target: "kumo::alsa", tracing::Level::DEBUG) {
        return;
    }
    let (function, message) = (ffi::text(function), ffi::text(message));
    tracing::debug!(target: "kumo::alsa", err, "ALSA: {message} (in {function})");
}

/// Routes ALSA's messages into the log from now on, for the whole process; once, before the
/// first use of ALSA (every later call does nothing).
pub fn route_messages() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let code = ffi::route(to_log);
        if code != 0 {
            tracing::debug!(code, "could not route ALSA's messages; they go to the console");
        }
    });
}
