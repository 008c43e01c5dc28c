//! A hostile client: it completes the handshake like any client, then floods the
//! host with junk datagrams of every kind kumo knows (and none) and with uni streams of
//! garbage. The host's memory must stay bounded and the session must go on streaming.

mod common;

use kumo::core::wire::{Control, Hello, PROTOCOL_VERSION};
use kumo::net;
use kumo::net::tls::{self, Verify};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Held by each test for its whole run: resident memory is the process's, so a flood in the
/// other test at the same time would count in this one's growth.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Resident memory of this process (host and attacker), KiB.
fn rss_kib() -> u64 {
    common::rss_kib(std::process::id())
}

#[test]
fn junk_datagrams_and_streams_neither_grow_the_host_nor_stop_the_stream() {
    let _alone = one_at_a_time();
    let host = common::start_host("flood test host");
    let rt = &host.rt;
    let (addr, fingerprint) = (host.addr, host.fingerprint);
    let result = rt.block_on(async move {
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let (config, _) = tls::client_config(Verify::Pinned(fingerprint), None, net::transport()).unwrap();
        let conn = endpoint.connect_with(config, addr, "kumo-host").unwrap().await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            width: 640,
            height: 360,
            fps: 60,
            bitrate_kbps: 2000,
            max_width: 3840,
            max_height: 2160,
            client_name: "flood".into(),
            audio_channels: 2,
            resume_token: 0,
            capabilities: kumo::core::wire::Capabilities::THIS_BUILD,
            start_kbps: 0,
        };
        net::write_control(&mut send, &Control::Hello(hello)).await.unwrap();
        assert!(matches!(net::read_control(&mut recv).await.unwrap(), Control::Welcome(_)));
        // Count the host's frames as they come.
        let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = frames.clone();
        let reader_conn = conn.clone();
        // This client reads no datagrams: its frames come by their streams alone.
        let no_parity = std::sync::Arc::new(net::ParityTable::default());
        tokio::spawn(async move {
            while let Ok(stream) = reader_conn.accept_uni().await {
                let (counter, no_parity) = (counter.clone(), no_parity.clone());
                tokio::spawn(async move {
                    if net::receive_frame(stream, &no_parity).await.is_ok() {
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_kib();
        // 200 000 junk datagrams: each of kumo's magics with garbage after it, and none.
        let mut rng = kumo::core::sim::rng::XorShift::from_state(0x1234_5678_9abc_def0);
        let started = Instant::now();
        for i in 0..200_000u32 {
            let state = rng.next_u64();
            let magic: &[u8] = [&b"KI"[..], b"KC", b"KO", b"KA", b"KR", b"zz"][(i % 6) as usize];
            let len = 2 + (state % 1000) as usize;
            let mut junk = magic.to_vec();
            junk.extend((0..len).map(|k| (state >> (k % 56)) as u8));
            conn.send_datagram(junk.into()).ok();
            if i % 2000 == 0 {
                tokio::task::yield_now().await;
            }
        }
        // And one-way streams of garbage: the host grants a client none (`net::host_transport`).
        let mut opened = 0;
        for _ in 0..60 {
            if let Ok(Ok(mut s)) = tokio::time::timeout(Duration::from_millis(20), conn.open_uni()).await {
                opened += 1;
                tokio::spawn(async move {
                    let junk = vec![0x5a_u8; 256 * 1024];
                    tokio::time::timeout(Duration::from_secs(2), s.write_all(&junk)).await.ok();
                });
            }
        }
        assert_eq!(opened, 0, "the host let a client open one-way streams");
        let flood_secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_kib();
        let counted = frames.load(std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let in_last_second = frames.load(std::sync::atomic::Ordering::Relaxed) - counted;
        conn.close(0u32.into(), b"done");
        (before, after, in_last_second, flood_secs)
    });
    host.stop.send(true).ok();
    let (before, after, in_last_second, flood_secs) = result;
    eprintln!(
        "flood: 200 000 junk datagrams offered in {flood_secs:.2} s (quinn's send buffer drops what does not fit) and no one-way stream granted; RSS {before} → {after} KiB, {in_last_second} frames in the second after"
    );
    // Bounded: the host grants no one-way streams and reads the datagrams as they come.
    // (Allow for allocator slack, and for the client's side of the flood in this process.)
    assert!(after < before + 48 * 1024, "RSS grew from {before} to {after} KiB");
    // The session goes on: 60 fps asked for, most of a second's frames arrive.
    assert!(in_last_second > 30, "only {in_last_second} frames in the second after the flood");
}

/// A hostile host: it answers the handshake, streams real frames from kumo's encoder, and
/// floods the client with junk datagrams (each of kumo's magics with garbage after it, and
/// none) and uni streams of garbage (bad headers, random bytes). The client's memory must
/// stay bounded and the real frames must go on being decoded.
/// Junk datagram `i` of the hostile host's flood: each of the client's magics with garbage,
/// none at all, and every tenth one well-formed parity for streams that never come, which the
/// client must bound.
fn junk_for_the_client(i: u32, state: u64) -> Vec<u8> {
    if i.is_multiple_of(10) {
        let shard_len = kumo::core::video::fec::SHARD_LEN;
        let parity = kumo::core::wire::Parity {
            stream: 1000 + u64::from(i),
            stream_len: 1 << 20,
            shard_len: shard_len as u16,
            block: 0,
            data_shards: kumo::core::wire::parity::MAX_DATA_SHARDS as u8,
            parity_shards: 4,
            index: (i % 4) as u8,
            bytes: vec![state as u8; shard_len],
        };
        return parity.encode();
    }
    let magic: &[u8] = [&b"KA"[..], b"KC", b"KO", b"KU", b"KI", b"KP", b"zz"][(i % 7) as usize];
    let mut junk = magic.to_vec();
    junk.extend((0..(state % 1000) as usize).map(|k| (state >> (k % 56)) as u8));
    junk
}

#[test]
fn junk_from_the_host_neither_grows_the_client_nor_stops_its_stream() {
    use kumo::net::tls::{Identity, Role};
    let _alone = one_at_a_time();
    let rt = kumo::runtime().unwrap();
    let identity = Identity::generate(Role::Host).unwrap();
    let fingerprint = identity.fingerprint;
    let endpoint = {
        let _guard = rt.enter();
        quinn::Endpoint::server(identity.server_config(net::transport()).unwrap(), "127.0.0.1:0".parse().unwrap())
            .unwrap()
    };
    let addr = endpoint.local_addr().unwrap();
    let flooded = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood_done = flooded.clone();
    rt.spawn(async move {
        let conn = endpoint.accept().await.unwrap().await.unwrap();
        let (mut send, mut recv) = conn.accept_bi().await.unwrap();
        let Control::Hello(hello) = net::read_control(&mut recv).await.unwrap() else { panic!("no hello") };
        let welcome = kumo::core::wire::Welcome {
            version: hello.version,
            width: 640,
            height: 360,
            fps: 30,
            bitrate_kbps: 2000,
            host_name: "hostile".into(),
            color: kumo::core::view::color::ColorSpace::HOST_DEFAULT,
            audio: None,
            resume_token: 1,
            capabilities: kumo::core::wire::Capabilities::THIS_BUILD,
        };
        net::write_control(&mut send, &Control::Welcome(welcome)).await.unwrap();
        // Keep reading the control stream (pings, repairs) so the client is not blocked.
        tokio::spawn(async move { while net::read_control(&mut recv).await.is_ok() {} });
        // Real frames from kumo's own encoder thread.
        let (frames_tx, mut frames) = tokio::sync::mpsc::channel(4);
        let settings =
            kumo::host::encode::EncoderSettings { width: 640, height: 360, fps: 30, bitrate_kbps: 2000, threads: 1 };
        let gate = kumo::host::encode::SendGate::new(settings.fps);
        let scene = kumo::host::encode::Picture::Scene;
        let worker = kumo::host::encode::spawn(settings, frames_tx, Arc::default(), gate.clone(), scene).unwrap();
        let sender = conn.clone();
        tokio::spawn(async move {
            // The scene never says "still": every item is a frame.
            while let Some(kumo::host::encode::Encoded::Frame(frame)) = frames.recv().await {
                // With parity, so that its datagrams are mixed into the flood's.
                kumo::host::send_frame(&sender, frame, &gate, 0.25);
            }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut rng = kumo::core::sim::rng::XorShift::from_state(0x0bad_cafe_f00d_0001);
        for i in 0..100_000u32 {
            let state = rng.next_u64();
            let junk = junk_for_the_client(i, state);
            conn.send_datagram(junk.into()).ok();
            if i % 2000 == 0 {
                tokio::task::yield_now().await;
            }
        }
        // 40 garbage streams: random bytes, or a frame header's magic followed by garbage.
        for n in 0..40u64 {
            if let Ok(mut s) = conn.open_uni().await {
                let mut junk: Vec<u8> =
                    (0..256 * 1024u64).map(|k| (k.wrapping_mul(2_654_435_761) >> (n % 24)) as u8).collect();
                if n % 2 == 0 {
                    junk[..4].copy_from_slice(b"KUMO");
                }
                tokio::spawn(
                    async move { tokio::time::timeout(Duration::from_secs(2), s.write_all(&junk)).await.ok() },
                );
            }
        }
        flood_done.store(true, std::sync::atomic::Ordering::Release);
        tokio::time::sleep(Duration::from_secs(6)).await;
        worker.stop();
    });
    let config = common::client_config(addr, fingerprint, None);
    let session = rt.block_on(kumo::client::connect(config)).unwrap();
    let decoded_in = |window: Duration| {
        let deadline = Instant::now() + window;
        let mut pictures = 0;
        while Instant::now() < deadline {
            pictures += u32::from(session.slot.take().0.is_some());
            while session.events.try_recv().is_ok() {}
            std::thread::sleep(Duration::from_millis(5));
        }
        pictures
    };
    decoded_in(Duration::from_millis(800));
    let before = rss_kib();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !flooded.load(std::sync::atomic::Ordering::Acquire) && Instant::now() < deadline {
        decoded_in(Duration::from_millis(50));
    }
    assert!(flooded.load(std::sync::atomic::Ordering::Acquire), "the flood did not finish");
    decoded_in(Duration::from_secs(2));
    let after = rss_kib();
    let pictures = decoded_in(Duration::from_secs(1));
    session.stop();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(3), session.finish()).await.ok() });
    eprintln!(
        "client flood: 100 000 junk datagrams and 10 MiB of junk streams; RSS {before} → {after} KiB, {pictures} pictures decoded in the second after"
    );
    assert!(after < before + 48 * 1024, "the client's RSS grew from {before} to {after} KiB");
    assert!(pictures > 15, "only {pictures} pictures in the second after the flood (30 fps streamed)");
}
