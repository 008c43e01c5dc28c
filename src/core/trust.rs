//! Trust between hosts and clients: certificate fingerprints, the pairing PIN and the window
//! in which a host accepts it, and the records each side keeps of the other.
//!
//! Pure: time comes in as an argument (`now` since the host started, or Unix seconds for the
//! records), randomness as a function. The TLS, pairing and storage shells do the I/O.

use std::fmt::Write as _;
use std::time::Duration;
use thiserror::Error;

/// A SHA-256 certificate fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{0}' is not a SHA-256 fingerprint: expected 64 hex digits (colons allowed), as `kumo host` prints at start")]
pub struct BadFingerprint(pub String);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(cert_der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, cert_der);
        let mut out = [0; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// Parses 64 hex digits, with or without colons, in either case.
    pub fn parse(text: &str) -> Result<Self, BadFingerprint> {
        let digits: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
        let bad = || BadFingerprint(text.to_owned());
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(|_| bad())?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }

    /// The hex digits without colons, lower case (for matching a typed prefix).
    fn hex(&self) -> String {
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            write!(s, "{b:02x}").ok();
            s
        })
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::with_capacity(95);
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                s.push(':');
            }
            write!(s, "{b:02X}").ok();
        }
        f.write_str(&s)
    }
}

/// Digits in a pairing PIN.
pub const PIN_DIGITS: usize = 6;
/// How long a host accepts its PIN.
pub const PAIRING_WINDOW: Duration = Duration::from_mins(5);
/// Guesses a PIN allows (a client's proof checked), after which it is void.
pub const PAIRING_TRIES: u32 = 3;
/// How long one pairing run may take before it counts as abandoned: the PIN is typed before
/// the client connects, so a run is a few round trips (and the host's admission deadline,
/// `core::session::admission::ADMISSION_DEADLINE`, ends it by then anyway).
pub const PAIRING_RUN: Duration = Duration::from_secs(10);

/// A six-digit pairing PIN, shown as `123-456`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pin(u32);

/// Redacted: a PIN must not reach a log.
impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{0}' is not a pairing PIN: type the 6 digits the host shows, like 123-456")]
pub struct BadPin(pub String);

impl Pin {
    /// A uniformly random PIN from a source of random `u32`s (rejection sampling: values past
    /// the last whole million are drawn again, so no PIN is likelier than another).
    pub fn random(mut next: impl FnMut() -> u32) -> Self {
        const LIMIT: u32 = u32::MAX - u32::MAX % 1_000_000;
        loop {
            let r = next();
            if r < LIMIT {
                return Self(r % 1_000_000);
            }
        }
    }

    /// Reads what a person typed: six digits, with spaces or dashes anywhere.
    pub fn parse(text: &str) -> Result<Self, BadPin> {
        let digits: String = text.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        if digits.len() != PIN_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadPin(text.to_owned()));
        }
        digits.parse().map(Self).map_err(|_| BadPin(text.to_owned()))
    }

    /// The secret the key exchange uses: the six ASCII digits.
    pub fn secret(&self) -> [u8; PIN_DIGITS] {
        let mut out = [0; PIN_DIGITS];
        let text = format!("{:06}", self.0);
        out.copy_from_slice(text.as_bytes());
        out
    }
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:03}-{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// Why a host will not start a pairing run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// No PIN is being offered.
    NotOpen,
    /// The PIN's time ran out.
    Expired,
    /// The PIN paired a client already (a PIN is good for one).
    Used,
    /// Every try was spent on wrong PINs.
    NoTriesLeft,
    /// Another pairing run is in progress.
    Busy,
}

impl Closed {
    /// What to tell the person pairing.
    pub fn explain(self, host: &str) -> String {
        let again = "press Enter in the host's terminal (or send it SIGUSR1) for a new PIN";
        match self {
            Self::NotOpen => {
                format!(
                    "host '{host}' is not pairing now: on the host run `kumo host --pair` and type the PIN it prints"
                )
            }
            Self::Expired => format!("the pairing PIN of host '{host}' expired (it lasts 5 minutes): {again}"),
            Self::Used => format!("the pairing PIN of host '{host}' has already paired a device: {again}"),
            Self::NoTriesLeft => {
                format!("host '{host}' stopped pairing after {PAIRING_TRIES} wrong PINs: {again}")
            }
            Self::Busy => format!("other devices are pairing with host '{host}' now; try again in a few seconds"),
        }
    }
}

/// A host's offer of a PIN: when it expires, how many guesses are left, which runs are going.
///
/// A try is counted when a client's proof is checked, not when a run starts: a run abandoned
/// before its proof (the client's `PairConfirm`) learns nothing about the PIN, since SPAKE2
/// gives an active attacker one guess per run only through the confirmation. So starting and
/// abandoning runs costs the PIN nothing. Runs go on side by side, one per address (`A`: the
/// shell's IP address). No number of runs held open makes the window busy for a newcomer: past
/// `PAIRING_RUNS` the oldest run is forgotten (its connection still ends at `PAIRING_RUN`, and
/// the host's door bounds the connections themselves), so devices holding runs from many
/// addresses cannot keep the player out either.
#[derive(Debug, Clone)]
pub struct PairingWindow<A> {
    pin: Pin,
    opened: Duration,
    tries_used: u32,
    /// Runs going, by address and start; a run older than `PAIRING_RUN` no longer counts.
    running: Vec<(A, Duration)>,
    used: bool,
}

/// Pairing runs remembered at once, at most: a newer one makes the oldest forgotten.
pub const PAIRING_RUNS: usize = 64;
/// Pairing runs going at once from one address.
pub const PAIRING_RUNS_PER_ADDRESS: usize = 1;

impl<A: PartialEq + Copy> PairingWindow<A> {
    pub fn open(pin: Pin, now: Duration) -> Self {
        Self { pin, opened: now, tries_used: 0, running: Vec::new(), used: false }
    }

    /// Starts a pairing run for a client at `from`: the PIN to run it with, or why not. It
    /// costs no try.
    pub fn begin(&mut self, now: Duration, from: A) -> Result<Pin, Closed> {
        self.still_open(now)?;
        self.running.retain(|&(_, since)| now.saturating_sub(since) < PAIRING_RUN);
        let here = self.running.iter().filter(|(a, _)| *a == from).count();
        if here >= PAIRING_RUNS_PER_ADDRESS {
            return Err(Closed::Busy);
        }
        if self.running.len() >= PAIRING_RUNS {
            let oldest = self.running.iter().enumerate().min_by_key(|&(_, &(_, since))| since).map(|(i, _)| i);
            if let Some(i) = oldest {
                self.running.swap_remove(i);
            }
        }
        self.running.push((from, now));
        Ok(self.pin)
    }

    /// A client's proof is about to be checked: that is a try, if one is left.
    pub fn check(&mut self, now: Duration) -> Result<(), Closed> {
        self.still_open(now)?;
        self.tries_used += 1;
        Ok(())
    }

    fn still_open(&self, now: Duration) -> Result<(), Closed> {
        if self.used {
            return Err(Closed::Used);
        }
        if now.saturating_sub(self.opened) >= PAIRING_WINDOW {
            return Err(Closed::Expired);
        }
        if self.tries_used >= PAIRING_TRIES {
            return Err(Closed::NoTriesLeft);
        }
        Ok(())
    }

    /// Ends the run `begin` started for `from`: `paired` if the client proved the PIN. Returns
    /// the tries left.
    pub fn end(&mut self, from: A, paired: bool) -> u32 {
        if let Some(i) = self.running.iter().position(|(a, _)| *a == from) {
            self.running.swap_remove(i);
        }
        self.used |= paired;
        self.tries_left()
    }

    pub fn tries_left(&self) -> u32 {
        PAIRING_TRIES.saturating_sub(self.tries_used)
    }

    /// How long the PIN is still good for.
    pub fn remaining(&self, now: Duration) -> Duration {
        PAIRING_WINDOW.saturating_sub(now.saturating_sub(self.opened))
    }
}

/// Text from a peer, made safe to show on a terminal or write in a log: newlines and tabs
/// escaped (`\n`, `\t`), other control characters and the bidirectional controls that could
/// reorder what a terminal shows (Trojan Source, CVE-2021-42574) removed, and at most
/// `PRINTABLE_CHARS` characters kept.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(PRINTABLE_CHARS * 4));
    for (i, c) in text.chars().enumerate() {
        if i == PRINTABLE_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Characters of peer text shown at most.
pub const PRINTABLE_CHARS: usize = 128;

/// Unicode's explicit directional formatting characters (UAX #9) and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A client a host paired with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedClient {
    pub name: String,
    pub fingerprint: Fingerprint,
    /// Unix seconds.
    pub paired: u64,
    /// Unix seconds; a revoked client is kept so its refusal can say when.
    pub revoked: Option<u64>,
}

/// What a host thinks of a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Paired(PairedClient),
    Revoked(PairedClient),
    Unknown,
}

/// The standing of `fingerprint` among `clients`.
pub fn standing(clients: &[PairedClient], fingerprint: Fingerprint) -> Standing {
    // The newest record wins: a revoked client that paired again is paired.
    match clients.iter().rev().find(|c| c.fingerprint == fingerprint) {
        Some(c) if c.revoked.is_some() => Standing::Revoked(c.clone()),
        Some(c) => Standing::Paired(c.clone()),
        None => Standing::Unknown,
    }
}

/// Adds a newly paired client: a certificate pairing again replaces its old record, and a name
/// already taken by another gets " (2)", " (3)"… so that names stay a way to revoke.
pub fn add_client(
    clients: &mut Vec<PairedClient>,
    name: &str,
    fingerprint: Fingerprint,
    now_unix: u64,
) -> PairedClient {
    clients.retain(|c| c.fingerprint != fingerprint);
    let name = &printable(name);
    let taken = |n: &str| clients.iter().any(|c| c.name == n);
    let mut unique = name.to_owned();
    let mut n = 2;
    while taken(&unique) {
        unique = format!("{name} ({n})");
        n += 1;
    }
    let client = PairedClient { name: unique, fingerprint, paired: now_unix, revoked: None };
    clients.push(client.clone());
    client
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RevokeError {
    #[error("no paired client is named or has a fingerprint starting '{0}'; `kumo host --list-clients` lists them")]
    NoMatch(String),
    #[error("'{0}' matches several clients ({1}); give more of the fingerprint")]
    Ambiguous(String, String),
    #[error("a fingerprint prefix needs at least 8 hex digits, '{0}' has fewer")]
    TooShort(String),
}

/// Marks the client named `which` (its name, or its fingerprint or a prefix of ≥ 8 hex digits)
/// revoked at `now_unix`.
pub fn revoke(clients: &mut [PairedClient], which: &str, now_unix: u64) -> Result<PairedClient, RevokeError> {
    let by_name = clients.iter().position(|c| c.revoked.is_none() && c.name == which);
    let index = if let Some(index) = by_name {
        index
    } else {
        let prefix: String = which.chars().filter(|&c| c != ':').collect::<String>().to_ascii_lowercase();
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RevokeError::NoMatch(which.to_owned()));
        }
        if prefix.len() < 8 {
            return Err(RevokeError::TooShort(which.to_owned()));
        }
        let found: Vec<usize> = clients
            .iter()
            .enumerate()
            .filter(|(_, c)| c.revoked.is_none() && c.fingerprint.hex().starts_with(&prefix))
            .map(|(i, _)| i)
            .collect();
        match found.as_slice() {
            [] => return Err(RevokeError::NoMatch(which.to_owned())),
            [one] => *one,
            many => {
                let names: Vec<&str> = many.iter().map(|&i| clients[i].name.as_str()).collect();
                return Err(RevokeError::Ambiguous(which.to_owned(), names.join(", ")));
            }
        }
    };
    clients[index].revoked = Some(now_unix);
    Ok(clients[index].clone())
}

/// A calendar date (UTC) for Unix seconds, as `2026-11-25`: for messages and listings.
pub fn date(unix: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let days = (unix / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_cannot_move_the_terminal() {
        let name = "deck\u{1b}[2J\u{202E}gnp.exe\nfake line\tx\u{7}";
        assert_eq!(printable(name), "deck[2Jgnp.exe\\nfake line\\tx");
        let long = "é".repeat(1000);
        let shown = printable(&long);
        assert_eq!(shown.chars().count(), PRINTABLE_CHARS + 1);
        assert!(shown.ends_with('…'));
        let mut clients = Vec::new();
        let stored = add_client(&mut clients, "a\u{2066}b\nc", Fingerprint::of(b"x"), 1);
        assert_eq!(stored.name, "ab\\nc");
    }

    #[test]
    fn fingerprints_print_and_parse() {
        let fp = Fingerprint::of(b"certificate");
        let text = fp.to_string();
        assert_eq!(text.len(), 95);
        assert_eq!(Fingerprint::parse(&text).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&text.replace(':', "").to_lowercase()).unwrap(), fp);
        assert!(Fingerprint::parse("AB:CD").is_err());
        assert!(Fingerprint::parse(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn pins_print_parse_and_are_uniform() {
        let pin = Pin::parse("012-345").unwrap();
        assert_eq!(pin.to_string(), "012-345");
        assert_eq!(&pin.secret(), b"012345");
        assert_eq!(Pin::parse(" 012 345 ").unwrap(), pin);
        assert_eq!(Pin::parse("012345").unwrap(), pin);
        for bad in ["", "12345", "1234567", "12a456", "+12345", "１２３４５６"] {
            assert!(Pin::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format!("{pin:?}"), "Pin(***)", "a PIN never reaches a log");
        // Values past the last whole million are drawn again.
        let mut draws = [u32::MAX, 4_294_000_000, 1_000_123].into_iter();
        assert_eq!(Pin::random(|| draws.next().unwrap()).to_string(), "000-123");
        assert_eq!(Pin::random(|| 3_999_999).to_string(), "999-999");
    }

    #[test]
    fn a_window_allows_three_guesses_one_pairing_and_five_minutes() {
        let s = Duration::from_secs;
        let pin = Pin::parse("111111").unwrap();
        let (me, jammer) = (1u8, 2u8);
        let mut w = PairingWindow::open(pin, s(100));
        // Runs started and abandoned cost nothing, however many.
        for i in 0..100 {
            assert_eq!(w.begin(s(101) + Duration::from_millis(i), jammer), Ok(pin));
            assert_eq!(w.end(jammer, false), PAIRING_TRIES);
        }
        // One run per address.
        assert_eq!(w.begin(s(102), jammer), Ok(pin));
        assert_eq!(w.begin(s(102), jammer), Err(Closed::Busy), "one run per address");
        assert_eq!(w.begin(s(102), me), Ok(pin), "another device is not held up");
        // Runs held open from many addresses never make the window busy; the oldest are
        // forgotten, and the window remembers no more than its cap.
        for other in 3..=200u8 {
            assert_eq!(w.begin(s(102) + Duration::from_millis(u64::from(other)), other), Ok(pin));
        }
        assert_eq!(w.running.len(), PAIRING_RUNS);
        assert_eq!(w.begin(s(102), jammer), Ok(pin), "the oldest runs were forgotten");
        // An abandoned run stops counting after PAIRING_RUN.
        assert_eq!(w.begin(s(102) + PAIRING_RUN, jammer), Ok(pin));
        // Each proof checked is a try.
        assert_eq!(w.check(s(103)), Ok(()));
        assert_eq!(w.end(me, false), 2);
        assert_eq!(w.check(s(104)), Ok(()));
        assert_eq!(w.check(s(104)), Ok(()));
        assert_eq!(w.check(s(105)), Err(Closed::NoTriesLeft));
        assert_eq!(w.begin(s(140), 9), Err(Closed::NoTriesLeft));

        let mut w = PairingWindow::open(pin, s(0));
        assert_eq!(w.begin(s(1), me), Ok(pin));
        assert_eq!(w.begin(s(1), jammer), Ok(pin));
        assert_eq!(w.check(s(1)), Ok(()));
        w.end(me, true);
        assert_eq!(w.check(s(2)), Err(Closed::Used), "a PIN pairs one client, even a run already going");
        assert_eq!(w.begin(s(2), 7), Err(Closed::Used));

        let mut w = PairingWindow::<u8>::open(pin, s(0));
        assert_eq!(w.remaining(s(60)), s(240));
        assert_eq!(w.begin(PAIRING_WINDOW, me), Err(Closed::Expired));
        assert!(Closed::Expired.explain("den").contains("for a new PIN"));
        assert!(Closed::NotOpen.explain("den").contains("kumo host --pair"));
    }

    #[test]
    fn records_add_find_and_revoke() {
        let a = Fingerprint([0xab; 32]);
        let b = Fingerprint([0xcd; 32]);
        let mut clients = Vec::new();
        assert_eq!(standing(&clients, a), Standing::Unknown);
        add_client(&mut clients, "deck", a, 10);
        let second = add_client(&mut clients, "deck", b, 11);
        assert_eq!(second.name, "deck (2)", "names stay unique");
        assert!(matches!(standing(&clients, a), Standing::Paired(c) if c.name == "deck"));

        assert_eq!(revoke(&mut clients, "abab", 20), Err(RevokeError::TooShort("abab".into())));
        assert_eq!(revoke(&mut clients, "nobody", 20), Err(RevokeError::NoMatch("nobody".into())));
        let revoked = revoke(&mut clients, "AB:AB:AB:AB", 20).unwrap();
        assert_eq!((revoked.name.as_str(), revoked.revoked), ("deck", Some(20)));
        assert!(matches!(standing(&clients, a), Standing::Revoked(_)));
        assert!(matches!(standing(&clients, b), Standing::Paired(_)));
        revoke(&mut clients, "deck (2)", 21).unwrap();
        assert!(matches!(standing(&clients, b), Standing::Revoked(_)));
        assert!(revoke(&mut clients, "deck (2)", 22).is_err(), "revoked already");

        // Pairing again replaces the revoked record.
        add_client(&mut clients, "deck", a, 30);
        assert!(matches!(standing(&clients, a), Standing::Paired(c) if c.paired == 30));
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_795_564_800), "2026-11-25");
    }
}
