//! Input scripts: a timed sequence of pad, keyboard and mouse changes, for automation and
//! for testers who want repeatable runs. `--input-script FILE` plays one through the same
//! input path as real devices.
//!
//! The format is text, one change per line, `#` starts a comment:
//!
//! ```text
//! # time_ms  what
//! 0     key W down            # keys by name: A-Z, 0-9, Space, Enter, Escape, Tab,
//! 250   key W up              #   Backspace, Delete, Home, End, Up, Down, Left, Right,
//!                             #   Minus, Equal, LeftBracket, RightBracket, Backslash,
//!                             #   Semicolon, Apostrophe, Grave, Comma, Period, Slash,
//!                             #   Left/RightShift, Left/RightCtrl, Left/RightAlt, F1-F12
//!                             #   (physical positions, named as on a US layout)
//! 300   mouse move 40 -10     # relative motion in counts (x right, y down)
//! 310   mouse position 0.5 0.25   # absolute position over the video, 0..1
//! 320   mouse button left down    # left, right, middle, back, forward
//! 330   mouse scroll -2
//! 400   pad 0 connect         # pads 0-3
//! 410   pad 0 stick left 0.5 -1   # x right, y down, -1..1 (dead zone applied)
//! 420   pad 0 button A down   # A B X Y LB RB Back Start Guide LS RS Up Down Left Right
//! 430   pad 0 trigger right 1 # 0..1
//! 500   release               # let go of every key, button and stick
//! 900   end                   # optional: the script's last moment
//! ```
//!
//! Times are milliseconds from the start of the session and must not go backwards. Pure: the
//! player takes the time as a parameter.

use crate::input::{
    InputState, PadState, button, key, mouse_button, radial_dead_zone, stick_axis, trigger_axis, trigger_dead_zone,
};
use std::time::Duration;

/// Longest script accepted, in lines (a script is hand-written or generated, not a recording).
pub const MAX_LINES: usize = 100_000;

/// Latest time a script may name: a day.
pub const MAX_TIME_MS: u64 = 24 * 3600 * 1000;

/// Stick dead zone applied to scripted stick positions, as to real pads.
pub const STICK_DEAD_ZONE: (f32, f32) = (0.1, 0.98);
pub const TRIGGER_DEAD_ZONE: f32 = 0.05;

/// One change to the input state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    Key { usage: u8, down: bool },
    MouseMove { dx: i32, dy: i32 },
    MousePosition { x: f32, y: f32 },
    MouseButton { bit: u8, down: bool },
    Scroll(i32),
    PadConnect { pad: usize, connected: bool },
    Stick { pad: usize, right: bool, x: f32, y: f32 },
    PadButton { pad: usize, bit: u32, down: bool },
    Trigger { pad: usize, right: bool, value: f32 },
    ReleaseAll,
    End,
}

impl Change {
    /// Applies the change to a state.
    pub fn apply(self, s: &mut InputState) {
        match self {
            Self::Key { usage, down } => s.set_key(usage, down),
            Self::MouseMove { dx, dy } => {
                s.mouse.dx_total = s.mouse.dx_total.wrapping_add(dx);
                s.mouse.dy_total = s.mouse.dy_total.wrapping_add(dy);
            }
            Self::MousePosition { x, y } => {
                s.mouse.x = (x.clamp(0.0, 1.0) * 65535.0).round() as u16;
                s.mouse.y = (y.clamp(0.0, 1.0) * 65535.0).round() as u16;
            }
            Self::MouseButton { bit, down } => set_bit8(&mut s.mouse.buttons, bit, down),
            Self::Scroll(steps) => s.mouse.scroll_total = s.mouse.scroll_total.wrapping_add(steps),
            Self::PadConnect { pad, connected } => {
                s.pads[pad] = PadState::default();
                s.pads[pad].connected = connected;
            }
            Self::Stick { pad, right, x, y } => {
                let (x, y) = radial_dead_zone(x, y, STICK_DEAD_ZONE.0, STICK_DEAD_ZONE.1);
                let p = &mut s.pads[pad];
                p.connected = true;
                let stick = if right { &mut p.right } else { &mut p.left };
                *stick = [stick_axis(x), stick_axis(y)];
            }
            Self::PadButton { pad, bit, down } => {
                let p = &mut s.pads[pad];
                p.connected = true;
                if down {
                    p.buttons |= bit;
                } else {
                    p.buttons &= !bit;
                }
            }
            Self::Trigger { pad, right, value } => {
                let p = &mut s.pads[pad];
                p.connected = true;
                p.triggers[usize::from(right)] = trigger_axis(trigger_dead_zone(value, TRIGGER_DEAD_ZONE));
            }
            Self::ReleaseAll => s.release_all(),
            Self::End => {}
        }
    }
}

fn set_bit8(bits: &mut u8, bit: u8, on: bool) {
    if on {
        *bits |= bit;
    } else {
        *bits &= !bit;
    }
}

/// A parsed script: changes in time order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    pub steps: Vec<(Duration, Change)>,
}

/// A line that could not be read, with its number (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

impl Script {
    pub fn parse(text: &str) -> Result<Self, ScriptError> {
        let mut steps = Vec::new();
        let mut last = Duration::ZERO;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if line > MAX_LINES {
                return Err(ScriptError { line, message: format!("a script may have at most {MAX_LINES} lines") });
            }
            let words: Vec<&str> = raw.split('#').next().unwrap_or("").split_whitespace().collect();
            let Some((time, rest)) = words.split_first() else { continue };
            let err = |message: String| ScriptError { line, message };
            let ms: u64 = time
                .parse()
                .ok()
                .filter(|&ms| ms <= MAX_TIME_MS)
                .ok_or_else(|| err(format!("`{time}` is not a time in milliseconds (0 to {MAX_TIME_MS})")))?;
            let at = Duration::from_millis(ms);
            if at < last {
                return Err(err(format!("time {ms} ms goes back before the line above")));
            }
            last = at;
            let change = parse_change(rest).map_err(err)?;
            steps.push((at, change));
        }
        Ok(Self { steps })
    }

    /// When the script is over.
    pub fn duration(&self) -> Duration {
        self.steps.last().map_or(Duration::ZERO, |(t, _)| *t)
    }
}

fn parse_change(words: &[&str]) -> Result<Change, String> {
    let num = |s: &str| s.parse::<f32>().ok().filter(|v| v.is_finite()).ok_or_else(|| format!("`{s}` is not a number"));
    let int = |s: &str| s.parse::<i32>().map_err(|_| format!("`{s}` is not a whole number"));
    let updown = |s: &str| match s {
        "down" => Ok(true),
        "up" => Ok(false),
        _ => Err(format!("expected `down` or `up`, found `{s}`")),
    };
    let side = |s: &str| match s {
        "left" => Ok(false),
        "right" => Ok(true),
        _ => Err(format!("expected `left` or `right`, found `{s}`")),
    };
    let pad = |s: &str| {
        s.parse::<usize>().ok().filter(|&p| p < crate::input::MAX_PADS).ok_or_else(|| format!("pad `{s}` is not 0-3"))
    };
    Ok(match words {
        ["key", name, state] => Change::Key {
            usage: key::from_name(name).ok_or_else(|| format!("unknown key `{name}`"))?,
            down: updown(state)?,
        },
        ["mouse", "move", dx, dy] => Change::MouseMove { dx: int(dx)?, dy: int(dy)? },
        ["mouse", "position", x, y] => Change::MousePosition { x: num(x)?, y: num(y)? },
        ["mouse", "button", name, state] => {
            let bit = match name.to_ascii_lowercase().as_str() {
                "left" => mouse_button::LEFT,
                "right" => mouse_button::RIGHT,
                "middle" => mouse_button::MIDDLE,
                "back" => mouse_button::BACK,
                "forward" => mouse_button::FORWARD,
                _ => return Err(format!("unknown mouse button `{name}`")),
            };
            Change::MouseButton { bit, down: updown(state)? }
        }
        ["mouse", "scroll", steps] => Change::Scroll(int(steps)?),
        ["pad", p, "connect"] => Change::PadConnect { pad: pad(p)?, connected: true },
        ["pad", p, "disconnect"] => Change::PadConnect { pad: pad(p)?, connected: false },
        ["pad", p, "stick", s, x, y] => Change::Stick { pad: pad(p)?, right: side(s)?, x: num(x)?, y: num(y)? },
        ["pad", p, "button", name, state] => {
            let bit = button::NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|&(_, b)| b)
                .ok_or_else(|| format!("unknown pad button `{name}`"))?;
            Change::PadButton { pad: pad(p)?, bit, down: updown(state)? }
        }
        ["pad", p, "trigger", s, v] => Change::Trigger { pad: pad(p)?, right: side(s)?, value: num(v)? },
        ["release"] => Change::ReleaseAll,
        ["end"] => Change::End,
        _ => {
            return Err(format!("cannot read `{}`: see the format in assets/input-scripts/README.md", words.join(" ")));
        }
    })
}

/// Plays a script into an input state.
#[derive(Debug, Clone)]
pub struct Player {
    script: Script,
    next: usize,
}

impl Player {
    pub fn new(script: Script) -> Self {
        Self { script, next: 0 }
    }

    /// Applies every change due by `now` (time since the session started); returns whether
    /// the state changed.
    pub fn advance(&mut self, now: Duration, state: &mut InputState) -> bool {
        let before = *state;
        while let Some(&(at, change)) = self.script.steps.get(self.next)
            && at <= now
        {
            change.apply(state);
            self.next += 1;
        }
        *state != before
    }

    /// The next change due by `now`, one at a time, so each can be applied as its own device
    /// event (a press and its release at the same moment stay two events).
    pub fn next_due(&mut self, now: Duration) -> Option<Change> {
        let &(at, change) = self.script.steps.get(self.next)?;
        (at <= now).then(|| {
            self.next += 1;
            change
        })
    }

    /// When the next change is due; `None` when the script is over.
    pub fn next_at(&self) -> Option<Duration> {
        self.script.steps.get(self.next).map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "
        # a comment
        0     key W down
        250   key W up        # trailing comment
        300   mouse move 40 -10
        310   mouse position 0.5 0.25
        320   mouse button left down
        330   mouse scroll -2
        400   pad 0 connect
        410   pad 0 stick left 0.5 -1
        420   pad 0 button A down
        430   pad 0 trigger right 1
        500   release
        900   end
    ";

    #[test]
    fn the_documented_example_parses_and_plays() {
        let script = Script::parse(EXAMPLE).unwrap();
        assert_eq!(script.steps.len(), 12);
        assert_eq!(script.duration(), Duration::from_millis(900));
        let mut p = Player::new(script);
        let mut s = InputState::default();
        assert!(p.advance(Duration::ZERO, &mut s));
        assert!(s.key_down(key::W));
        assert_eq!(p.next_at(), Some(Duration::from_millis(250)));
        assert!(!p.advance(Duration::from_millis(100), &mut s), "nothing due yet");
        p.advance(Duration::from_millis(430), &mut s);
        assert!(!s.key_down(key::W));
        assert_eq!((s.mouse.dx_total, s.mouse.dy_total, s.mouse.scroll_total), (40, -10, -2));
        assert_eq!(s.mouse.buttons, mouse_button::LEFT);
        assert_eq!(s.mouse.y, 16384);
        let pad = s.pads[0];
        assert!(pad.connected && pad.buttons == button::A && pad.triggers[1] == 65535);
        // (0.5, -1) is past full deflection: the radial dead zone keeps its direction at length 1.
        assert!(pad.left[0] > 14_000 && pad.left[1] < -29_000, "{:?}", pad.left);
        p.advance(Duration::from_millis(500), &mut s);
        assert_eq!(s.mouse.buttons, 0);
        assert_eq!(s.pads[0].buttons, 0);
        assert_eq!(s.mouse.dx_total, 40, "release keeps motion totals");
        p.advance(Duration::from_secs(10), &mut s);
        assert_eq!(p.next_at(), None);
    }

    #[test]
    fn mistakes_name_their_line() {
        for (text, line, needle) in [
            ("0 key W down\n10 key Hyper down", 2, "unknown key"),
            ("100 key W down\n50 key W up", 2, "goes back"),
            ("abc key W down", 1, "not a time"),
            ("18446744073709551615 key W down", 1, "not a time"),
            ("0 pad 7 connect", 1, "0-3"),
            ("0 mouse move 1.5 2", 1, "whole number"),
            ("0 pad 0 stick up 0 0", 1, "`left` or `right`"),
            ("0 dance", 1, "cannot read"),
            ("0 pad 0 button Z down", 1, "unknown pad button"),
            ("0 pad 0 trigger left NaN", 1, "not a number"),
        ] {
            let err = Script::parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
