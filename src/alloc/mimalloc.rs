//! mimalloc as the global allocator, asked the way Rust's `System` allocator asks malloc: plain
//! `mi_malloc` when the alignment wanted is one every mimalloc block has (a machine word), and
//! `mi_malloc_aligned` only above that.
//!
//! The `mimalloc` crate's allocator calls `mi_malloc_aligned` for every allocation. Its fast
//! path covers blocks of up to 1 KiB; a larger block whose size is not a power of two (a
//! request's boxed future, Pingora's buffers) went through the generic path and was
//! over-allocated by its alignment, marking the page as holding interior pointers: about 8 000
//! instructions per proxied request in Rampart and 4 300 in bare Pingora (callgrind,
//! `bench/proxy-instructions.sh`). This file is also compiled into the reference proxies
//! (`examples/bench_server`), so benchmarks compare proxy code, not allocators.

use libmimalloc_sys::{mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned};
use libmimalloc_sys::{mi_zalloc, mi_zalloc_aligned};
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// Every mimalloc block starts on a machine word: its sizes are whole words.
const WORD: usize = std::mem::size_of::<usize>();

pub struct Mimalloc;

// SAFETY: each method hands mimalloc's own result back unchanged; a block asked for with
// `mi_malloc` is aligned to a word, and larger alignments go through the aligned calls.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi_malloc(layout.size()) as *mut u8
        } else {
            mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi_zalloc(layout.size()) as *mut u8
        } else {
            mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD {
            mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_asked_for() {
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in [1, 7, 8, 24, 100, 1000, 1500, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let p = Mimalloc.alloc(layout);
                    assert!(
                        !p.is_null() && (p as usize).is_multiple_of(align),
                        "{size} {align}"
                    );
                    p.write_bytes(0xa5, size);
                    let q = Mimalloc.realloc(p, layout, size * 3);
                    assert!(
                        !q.is_null() && (q as usize).is_multiple_of(align),
                        "{size} {align}"
                    );
                    assert_eq!(*q.add(size - 1), 0xa5);
                    Mimalloc.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    let z = Mimalloc.alloc_zeroed(layout);
                    assert!((z as usize).is_multiple_of(align) && *z.add(size - 1) == 0);
                    Mimalloc.dealloc(z, layout);
                }
            }
        }
    }
}
