//! The memory allocator: mimalloc, for every binary that links this library.
//!
//! Measured in `docs/performance.md`: glibc's malloc is about a third of a proxied request's
//! instructions; mimalloc takes ~18 % off Rampart's CPU per request. mimalloc keeps freed
//! pages for a while before returning them to the system, so after the rare, large bursts
//! of allocation (compiling a rules set) [`release_free_memory`] hands them back at once.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns the calling thread's freed memory to the system now. For use after loading
/// rules: parsing 100 000 rules frees more than the compiled set keeps, and without this the
/// resident size stays that much higher until the allocator next purges.
pub fn release_free_memory() {
    // SAFETY: mi_collect only walks mimalloc's own heaps; it takes no pointers.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
