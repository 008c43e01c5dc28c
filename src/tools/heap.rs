//! Live heap bytes, counted: a global allocator that wraps the system's and keeps two relaxed
//! atomic counters (bytes live, allocations live), so a soak can tell a leak (live bytes that
//! keep growing) from the allocator's own slack (resident memory that moves in pages, or that
//! glibc keeps after a free). The `kumo` binary installs it; a test binary may too. Its cost is
//! two atomic additions per allocation and per free.
//!
//! Beside it, glibc's own figures (`mallinfo2`, [`malloc`]): the counting allocator sees only
//! what Rust allocates, and a windowed client's resident memory grew where its live heap did
//! not. glibc's malloc serves Rust and the C libraries alike (Mesa, libxcb, openh264), so its
//! bytes in use and bytes held tell a C library's growth from freed memory that is kept.
//!
//! Where the bytes were allocated is heaptrack's job (Debian's `heaptrack`, run by
//! `scripts/soak.sh` when asked): a backtrace per allocation would cost more than the stream.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

/// The system allocator, counted.
pub struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_ALLOCATIONS: AtomicI64 = AtomicI64::new(0);

#[expect(unsafe_code, reason = "a global allocator is an unsafe trait; each method only forwards to System")]
// SAFETY: every method forwards to `System` with the caller's own arguments, so `System`'s
// guarantees are the caller's; the counters are only arithmetic beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System::alloc`'s.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as i64, 1);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as i64, 1);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as i64), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller's contract is `System`'s.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as i64 - layout.size() as i64, 0);
        }
        new
    }
}

std::thread_local! {
    /// Bytes this thread allocated less those it freed (a const cell with no destructor: its
    /// access allocates nothing, so the allocator may use it).
    static THIS_THREAD: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

fn count(bytes: i64, allocations: i64) {
    LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    LIVE_ALLOCATIONS.fetch_add(allocations, Ordering::Relaxed);
    // A thread being torn down has no cell left: its last frees go uncounted here.
    THIS_THREAD.try_with(|c| c.set(c.get() + bytes)).ok();
}

/// Bytes the calling thread allocated less those it freed, since it started, if the counting
/// allocator is the process's: a unit-level check of one piece of code reads this, so that
/// what other threads of the process do meanwhile (a test harness storing another test's
/// output) does not count against it.
pub fn this_thread() -> Option<i64> {
    live().map(|_| THIS_THREAD.with(std::cell::Cell::get))
}

/// What is on the heap at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    pub bytes: u64,
    pub allocations: u64,
}

/// Bytes and allocations live now, if the counting allocator is the process's (a process
/// whose allocations go through it always has some live; one whose do not has none counted).
pub fn live() -> Option<Live> {
    let allocations = LIVE_ALLOCATIONS.load(Ordering::Relaxed);
    (allocations > 0)
        .then(|| Live { bytes: LIVE_BYTES.load(Ordering::Relaxed).max(0) as u64, allocations: allocations as u64 })
}

/// What the C allocator has at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malloc {
    /// Bytes in allocations: chunks in use in the arenas, and chunks mapped alone.
    pub in_use: u64,
    /// Bytes it has from the kernel for them: the arenas' and the chunks mapped alone; what
    /// is over `in_use` is free memory it keeps.
    pub held: u64,
}

/// glibc's malloc now, summed over its arenas (`mallinfo2`); `None` on another C library.
/// It locks each arena while it reads it, a few microseconds: a sample a second, not a call
/// per frame.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn malloc() -> Option<Malloc> {
    let m = mallinfo2();
    Some(Malloc { in_use: (m.uordblks + m.hblkhd) as u64, held: (m.arena + m.hblkhd) as u64 })
}

/// glibc's malloc now: not this C library.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn malloc() -> Option<Malloc> {
    None
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "mallinfo2 is a C function; it takes no arguments and returns a struct by value")]
fn mallinfo2() -> libc::mallinfo2 {
    // SAFETY: mallinfo2 has no preconditions and touches no memory of the caller's.
    unsafe { libc::mallinfo2() }
}

/// The samples of one process: its live heap, and glibc's bytes in use and held.
#[derive(Debug, Clone, Default)]
struct Samples {
    live: crate::core::stats::growth::Growth,
    malloc_in_use: crate::core::stats::growth::Growth,
    malloc_held: crate::core::stats::growth::Growth,
}

/// Heap samples of this process, one a second on "kumo-heap" once [`start_sampling`] ran.
static SAMPLES: std::sync::OnceLock<std::sync::Mutex<Samples>> = std::sync::OnceLock::new();

/// Warm-up left out of the growth figure: buffers, caches and the decoder's references fill
/// in the first minute (in a run shorter than three minutes, its first third).
pub const WARMUP: std::time::Duration = std::time::Duration::from_mins(1);

/// The soak test's control (`KUMO_SOAK_LEAK_BYTES_PER_SECOND`): the sampler leaks this many
/// bytes a second, on purpose, so that the test can show its gate catches a leak that size.
const LEAK_ON_PURPOSE: &str = "KUMO_SOAK_LEAK_BYTES_PER_SECOND";

/// Asks for heap samples (`scripts/soak.sh` and the soak test set it).
pub const SAMPLE_HEAP: &str = "KUMO_SAMPLE_HEAP";

/// Starts sampling the live heap every `every` for the rest of the process, as a task on
/// `rt`, when [`SAMPLE_HEAP`] is set (once; nothing when the counting allocator is not the
/// process's). Only when asked: with sampling on in every run, the audio test's sound
/// underran in most runs on this 2-core machine (without it, never; the cause is not found
/// yet, see docs/robustness.md), so soaks ask for it and players do not get it.
pub fn start_sampling(rt: &tokio::runtime::Runtime, every: std::time::Duration) {
    if std::env::var_os(SAMPLE_HEAP).is_none() || live().is_none() || SAMPLES.get().is_some() {
        return;
    }
    let samples = SAMPLES.get_or_init(Default::default);
    let started = std::time::Instant::now();
    let leak: usize = std::env::var(LEAK_ON_PURPOSE).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    rt.spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if leak > 0 {
                let each = leak.saturating_mul(usize::try_from(every.as_millis()).unwrap_or(1000)) / 1000;
                let _leaked: &'static mut [u8] = vec![1u8; each.min(1 << 20)].leak();
            }
            let (at, live, malloc) = (started.elapsed(), live(), malloc());
            let mut samples = samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(now) = live {
                samples.live.record(at, now.bytes);
            }
            if let Some(now) = malloc {
                samples.malloc_in_use.record(at, now.in_use);
                samples.malloc_held.record(at, now.held);
            }
        }
    });
}

/// The live heap now and its growth after [`WARMUP`], if it is counted.
pub fn figures() -> Option<crate::core::stats::growth::HeapFigures> {
    let Live { bytes: live_bytes, allocations: live_allocations } = live()?;
    let samples = SAMPLES.get().map(|s| s.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone());
    let per_hour = |g: &crate::core::stats::growth::Growth| g.per_hour(warm_up(g.span()));
    let malloc = malloc().map(|now| crate::core::stats::growth::MallocFigures {
        in_use_bytes: now.in_use,
        held_bytes: now.held,
        in_use_growth_bytes_per_hour: samples.as_ref().and_then(|s| per_hour(&s.malloc_in_use)),
        held_growth_bytes_per_hour: samples.as_ref().and_then(|s| per_hour(&s.malloc_held)),
    });
    Some(crate::core::stats::growth::HeapFigures {
        live_bytes,
        live_allocations,
        growth_bytes_per_hour: samples.as_ref().and_then(|s| per_hour(&s.live)),
        samples: samples.map_or(0, |s| s.live.len()),
        malloc,
    })
}

/// The warm-up for a run of `span`: [`WARMUP`], or its first third when shorter than three
/// minutes (CI's short soak).
fn warm_up(span: std::time::Duration) -> std::time::Duration {
    WARMUP.min(span / 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_counts_an_allocation_while_it_lives_and_holds_at_least_what_is_in_use() {
        // 8 MiB: over glibc's mmap threshold, so it is mapped alone and other threads of the
        // test binary cannot hide it by freeing as much meanwhile.
        const SIZE: usize = 8 << 20;
        let before = malloc().expect("glibc's figures");
        let block = vec![7u8; SIZE];
        let during = malloc().expect("glibc's figures");
        assert!(during.in_use >= before.in_use + SIZE as u64 / 2, "{before:?} → {during:?}");
        assert!(during.held >= during.in_use, "{during:?}");
        drop(std::hint::black_box(block));
        let after = malloc().expect("glibc's figures");
        assert!(after.in_use + SIZE as u64 / 2 <= during.in_use, "{during:?} → {after:?}");
    }
}
