//! A global allocator that counts the allocations of every thread but the
//! ones that opt out: the engine's workers do the work in these tests, the
//! test thread only builds packets and checks them. Included by the
//! end-to-end allocation tests, each its own binary with a single test so
//! nothing else runs alongside.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set on the test thread: its own allocations are not the engine's.
    static EXCLUDED: Cell<bool> = const { Cell::new(false) };
}

/// Stops counting the calling thread's allocations.
pub fn exclude_this_thread() {
    EXCLUDED.with(|e| e.set(true));
}

/// Allocations counted so far.
pub fn allocations() -> usize {
    ALLOCS.load(Relaxed)
}

fn note() {
    if !EXCLUDED.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
