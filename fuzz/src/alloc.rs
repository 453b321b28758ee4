//! A global allocator that measures how much a target holds at its peak and refuses
//! allocations no input should ever cause.
//!
//! libFuzzer's `-malloc_limit_mb` needs a sanitizer's malloc hooks, which stable Rust's
//! `--sanitizer none` builds do not have, so both the cargo-fuzz binaries and the replay
//! test install [`CappedAlloc`] and call targets through [`crate::check`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Most bytes a target may hold at once for one input (inputs are at most a few hundred
/// KiB; the largest legitimate buffer on these paths is the 50 MiB remote-read frame).
pub const MEMORY_LIMIT: usize = 256 * 1024 * 1024;

/// A single allocation above this is refused outright (the process then aborts with Rust's
/// "memory allocation failed" message), after the input is written to
/// `$SKEIN_FUZZ_OVERSIZE_DIR` (default: the temp dir) as `oversize-input`.
pub const REFUSE_ABOVE: usize = 1024 * 1024 * 1024;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static INPUT_PTR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static INPUT_LEN: AtomicUsize = AtomicUsize::new(0);

/// The measuring allocator: `#[global_allocator] static A: CappedAlloc = CappedAlloc;`.
pub struct CappedAlloc;

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(by: usize) {
    LIVE.fetch_sub(by, Ordering::Relaxed);
}

#[cold]
fn refuse(size: usize) {
    let dir = std::env::var_os("SKEIN_FUZZ_OVERSIZE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join("oversize-input");
    let ptr = INPUT_PTR.load(Ordering::Relaxed);
    let len = INPUT_LEN.load(Ordering::Relaxed);
    if !ptr.is_null() {
        // SAFETY: `measure` stored a slice that outlives the measured call, and this runs
        // during that call.
        let input = unsafe { std::slice::from_raw_parts(ptr, len) };
        let _ = std::fs::write(&path, input);
    }
    eprintln!(
        "skein-fuzz: refused an allocation of {size} bytes; input saved to {}",
        path.display()
    );
}

// SAFETY: every method delegates to `System` with the same layout; the counters are
// bookkeeping only.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > REFUSE_ABOVE {
            refuse(layout.size());
            return std::ptr::null_mut();
        }
        // SAFETY: same layout as given.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > REFUSE_ABOVE {
            refuse(layout.size());
            return std::ptr::null_mut();
        }
        // SAFETY: same layout as given.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > REFUSE_ABOVE {
            refuse(new_size);
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from `System` with this layout.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

/// An ongoing measurement (see [`measure`]).
pub struct Measure {
    base: usize,
}

/// Starts measuring the bytes held above what is held now, remembering `input` in case an
/// allocation has to be refused.
pub fn measure(input: &[u8]) -> Measure {
    INPUT_PTR.store(input.as_ptr().cast_mut(), Ordering::Relaxed);
    INPUT_LEN.store(input.len(), Ordering::Relaxed);
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    Measure { base }
}

impl Measure {
    /// Peak bytes held above the start (0 when [`CappedAlloc`] is not the allocator).
    pub fn finish(self) -> usize {
        INPUT_PTR.store(std::ptr::null_mut(), Ordering::Relaxed);
        INPUT_LEN.store(0, Ordering::Relaxed);
        PEAK.load(Ordering::Relaxed).saturating_sub(self.base)
    }
}
