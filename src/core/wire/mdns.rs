//! LAN discovery's messages: the part of multicast DNS and DNS-SD (RFC 6762, 6763) kumo
//! speaks. A client asks "who offers `_kumo._udp.local`?" (a PTR question); each host answers
//! with a PTR to its instance, an SRV with its port, and a TXT with its name, protocol version
//! and certificate fingerprint. The answer's source address is the host's address.
//!
//! Everything here reads bytes from the network: no length is trusted, names are capped at
//! 255 bytes and labels at 63, a compression pointer must point backwards (so it cannot
//! loop), and records beyond `MAX_RECORDS` are ignored. Nothing panics on any input.

/// The DNS-SD service kumo hosts offer.
pub const SERVICE: &str = "_kumo._udp.local";
/// The mDNS group and port.
pub const GROUP_V4: [u8; 4] = [224, 0, 0, 251];
pub const PORT: u16 = 5353;
/// Records looked at in one message.
const MAX_RECORDS: usize = 32;
/// A name's length on the wire, and a label's (RFC 1035).
const MAX_NAME: usize = 255;
const MAX_LABEL: usize = 63;
/// How long receivers may cache the records, seconds (RFC 6762's default for SRV/TXT).
const TTL: u32 = 120;

const TYPE_PTR: u16 = 12;
const TYPE_TXT: u16 = 16;
const TYPE_SRV: u16 = 33;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;
/// The top bit of an mDNS class: "unicast response wanted" in a question, "cache flush" in
/// an answer.
const CLASS_TOP_BIT: u16 = 0x8000;

/// What a host advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Shown to people ("kumo host"); also the DNS-SD instance name.
    pub name: String,
    pub port: u16,
    pub protocol: u16,
    /// The certificate fingerprint as `kumo host` prints it (not a proof: pairing is).
    pub fingerprint: String,
}

/// A DNS message's 12-byte header fields kumo uses.
struct Header {
    id: u16,
    response: bool,
    questions: u16,
    answers: u16,
}

/// A question for kumo hosts, with message id `id`.
pub fn query(id: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    header(&mut out, id, false, 1, 0);
    write_name(&mut out, SERVICE);
    out.extend_from_slice(&TYPE_PTR.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// Whether `bytes` is a query asking for kumo hosts (a PTR or ANY question for the service);
/// its message id if so.
pub fn asks_for_kumo(bytes: &[u8]) -> Option<u16> {
    let h = read_header(bytes)?;
    if h.response {
        return None;
    }
    let mut at = 12;
    for _ in 0..usize::from(h.questions).min(MAX_RECORDS) {
        let (name, next) = read_name(bytes, at)?;
        let kind = u16_at(bytes, next)?;
        let class = u16_at(bytes, next + 2)? & !CLASS_TOP_BIT;
        at = next + 4;
        if name.eq_ignore_ascii_case(SERVICE) && (kind == TYPE_PTR || kind == TYPE_ANY) && class == CLASS_IN {
            return Some(h.id);
        }
    }
    None
}

/// A host's answer to query `id`.
pub fn answer(id: u16, advert: &Advert) -> Vec<u8> {
    let instance = format!("{}.{SERVICE}", instance_label(&advert.name));
    let mut out = Vec::with_capacity(200);
    header(&mut out, id, true, 0, 3);
    // PTR: service → instance.
    record(&mut out, SERVICE, TYPE_PTR, false, |rdata| write_name(rdata, &instance));
    // SRV: priority, weight, port, target. The target names the host; kumo reads the
    // address from the answer's source, so no A record is needed.
    record(&mut out, &instance, TYPE_SRV, true, |rdata| {
        rdata.extend_from_slice(&0u16.to_be_bytes());
        rdata.extend_from_slice(&0u16.to_be_bytes());
        rdata.extend_from_slice(&advert.port.to_be_bytes());
        write_name(rdata, "kumo-host.local");
    });
    // TXT: key=value strings, each at most 255 bytes.
    record(&mut out, &instance, TYPE_TXT, true, |rdata| {
        for entry in
            [format!("name={}", advert.name), format!("v={}", advert.protocol), format!("fp={}", advert.fingerprint)]
        {
            let bytes = cut(&entry, 255).as_bytes();
            rdata.push(bytes.len() as u8);
            rdata.extend_from_slice(bytes);
        }
    });
    out
}

/// A host found in an answer: what it advertised.
pub fn read_answer(bytes: &[u8]) -> Option<Advert> {
    let h = read_header(bytes)?;
    if !h.response {
        return None;
    }
    let mut at = 12;
    for _ in 0..usize::from(h.questions).min(MAX_RECORDS) {
        at = read_name(bytes, at)?.1 + 4;
    }
    let (mut port, mut txt) = (None, None);
    for _ in 0..usize::from(h.answers).min(MAX_RECORDS) {
        let (name, next) = read_name(bytes, at)?;
        let kind = u16_at(bytes, next)?;
        let len = usize::from(u16_at(bytes, next + 8)?);
        let start = next + 10;
        let rdata = bytes.get(start..start + len)?;
        let ours = name.len() > SERVICE.len() && name.to_ascii_lowercase().ends_with(&format!(".{SERVICE}"));
        match kind {
            TYPE_SRV if ours => port = Some(u16::from_be_bytes([*rdata.get(4)?, *rdata.get(5)?])),
            TYPE_TXT if ours => txt = Some(read_txt(rdata)),
            _ => {}
        }
        at = start + len;
    }
    let txt = txt?;
    // Shown on a terminal: no control characters (escape sequences) from the network.
    let get =
        |key: &str| txt.iter().find_map(|(k, v)| (k == key).then(|| v.chars().filter(|c| !c.is_control()).collect()));
    Some(Advert {
        name: get("name")?,
        port: port?,
        protocol: get("v").and_then(|v| v.parse().ok()).unwrap_or(0),
        fingerprint: get("fp").unwrap_or_default(),
    })
}

/// The DNS-SD instance label for a host name: at most 63 bytes, no dots, cut at a character.
fn instance_label(name: &str) -> String {
    let label: String = name.chars().map(|c| if c == '.' { ' ' } else { c }).collect();
    match cut(&label, MAX_LABEL) {
        "" => "kumo".to_owned(),
        label => label.to_owned(),
    }
}

fn header(out: &mut Vec<u8>, id: u16, response: bool, questions: u16, answers: u16) {
    // A response is authoritative (RFC 6762 §18.4); mDNS sets no other flag.
    let flags: u16 = if response { 0x8400 } else { 0 };
    for v in [id, flags, questions, answers, 0, 0] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn read_header(bytes: &[u8]) -> Option<Header> {
    let flags = u16_at(bytes, 2)?;
    Some(Header {
        id: u16_at(bytes, 0)?,
        response: flags & 0x8000 != 0,
        questions: u16_at(bytes, 4)?,
        answers: u16_at(bytes, 6)?,
    })
}

/// One resource record: name, type, class (with the cache-flush bit if `unique`), TTL, and
/// the data `rdata` writes.
fn record(out: &mut Vec<u8>, name: &str, kind: u16, unique: bool, rdata: impl FnOnce(&mut Vec<u8>)) {
    write_name(out, name);
    out.extend_from_slice(&kind.to_be_bytes());
    let class = if unique { CLASS_IN | CLASS_TOP_BIT } else { CLASS_IN };
    out.extend_from_slice(&class.to_be_bytes());
    out.extend_from_slice(&TTL.to_be_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    rdata(out);
    let len = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
}

/// Writes a dotted name as labels (uncompressed). Labels are cut at 63 bytes.
fn write_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let bytes = &label.as_bytes()[..label.len().min(MAX_LABEL)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
}

/// Reads the name at `at`, following compression pointers (each must point before the one
/// it is in, so there is no loop); returns it dotted and the offset after it.
fn read_name(bytes: &[u8], at: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let (mut pos, mut end, mut wire_len) = (at, None, 0usize);
    loop {
        let len = *bytes.get(pos)?;
        match len {
            0 => return Some((name, end.unwrap_or(pos + 1))),
            l if l & 0xC0 == 0xC0 => {
                let target = usize::from(u16::from_be_bytes([l & 0x3F, *bytes.get(pos + 1)?]));
                if target >= pos {
                    return None;
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            l if usize::from(l) <= MAX_LABEL => {
                let label = bytes.get(pos + 1..pos + 1 + usize::from(l))?;
                wire_len += label.len() + 1;
                if wire_len > MAX_NAME {
                    return None;
                }
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label));
                pos += 1 + usize::from(l);
            }
            _ => return None,
        }
    }
}

fn read_txt(rdata: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(&len) = rdata.get(at) {
        let Some(entry) = rdata.get(at + 1..at + 1 + usize::from(len)) else { break };
        // Invalid UTF-8 reads as U+FFFD, three bytes for one: cut back to what one entry
        // can carry, so that the advert written again reads the same.
        let text = String::from_utf8_lossy(entry);
        if let Some((k, v)) = cut(&text, 255).split_once('=') {
            out.push((k.to_ascii_lowercase(), v.to_owned()));
        }
        at += 1 + usize::from(len);
        if out.len() >= MAX_RECORDS {
            break;
        }
    }
    out
}

/// `text`'s longest prefix of at most `max` bytes that ends at a character.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn advert() -> Advert {
        Advert { name: "Living room PC".into(), port: 4433, protocol: 5, fingerprint: "AB:CD".into() }
    }

    #[test]
    fn a_query_is_recognised_and_answered() {
        let q = query(0x1234);
        assert_eq!(asks_for_kumo(&q), Some(0x1234));
        let a = answer(0x1234, &advert());
        assert_eq!(asks_for_kumo(&a), None, "an answer is not a question");
        assert_eq!(read_answer(&a), Some(advert()));
        assert_eq!(read_answer(&q), None, "a question is not an answer");
    }

    #[test]
    fn other_services_and_the_qu_bit() {
        let mut other = Vec::new();
        header(&mut other, 1, false, 1, 0);
        write_name(&mut other, "_airplay._tcp.local");
        other.extend_from_slice(&TYPE_PTR.to_be_bytes());
        other.extend_from_slice(&CLASS_IN.to_be_bytes());
        assert_eq!(asks_for_kumo(&other), None);
        // A question asking for a unicast answer (QU), in capitals: still ours.
        let mut qu = Vec::new();
        header(&mut qu, 7, false, 1, 0);
        write_name(&mut qu, "_KUMO._udp.local");
        qu.extend_from_slice(&TYPE_ANY.to_be_bytes());
        qu.extend_from_slice(&(CLASS_IN | CLASS_TOP_BIT).to_be_bytes());
        assert_eq!(asks_for_kumo(&qu), Some(7));
    }

    #[test]
    fn control_characters_from_the_network_are_dropped() {
        let evil = Advert { name: "den\u{1b}[2J\u{7}".into(), fingerprint: "AB\r\nCD".into(), ..advert() };
        let got = read_answer(&answer(1, &evil)).unwrap();
        assert_eq!((got.name.as_str(), got.fingerprint.as_str()), ("den[2J", "ABCD"));
    }

    #[test]
    fn names_are_capped_and_pointers_cannot_loop() {
        // A pointer to itself, and one pointing forwards.
        let mut looped = Vec::new();
        header(&mut looped, 1, false, 1, 0);
        looped.extend_from_slice(&[0xC0, 12, 0, 12, 0, 1]);
        assert_eq!(asks_for_kumo(&looped), None);
        assert!(read_name(&[0xC0, 2, 0], 0).is_none());
        // Backwards pointers are followed.
        let mut named = vec![4, b'k', b'u', b'm', b'o', 0, 3, b'a', b'b', b'c', 0xC0, 0];
        named.push(0);
        assert_eq!(read_name(&named, 6), Some(("abc.kumo".into(), 12)));
        // 300 bytes of labels are refused.
        let long: Vec<u8> =
            std::iter::repeat_n([9u8, b'a', b'a', b'a', b'a', b'a', b'a', b'a', b'a', b'a'], 30).flatten().collect();
        assert!(read_name(&long, 0).is_none());
        // A long host name still makes a valid label.
        let a = answer(1, &Advert { name: "x.".repeat(100), ..advert() });
        assert_eq!(read_answer(&a).unwrap().name, "x.".repeat(100));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            asks_for_kumo(&bytes);
            read_answer(&bytes);
        }

        #[test]
        fn truncated_answers_are_refused(cut in 0usize..1000) {
            let a = answer(9, &advert());
            let cut = cut % a.len();
            prop_assert_eq!(read_answer(&a[..cut]), None);
        }
    }
}
