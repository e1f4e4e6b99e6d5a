//! The memory allocator: mimalloc, for every binary that links this library.
//!
//! Measured in `docs/performance.md`: glibc's malloc is about a third of a proxied request's
//! instructions; mimalloc takes ~18 % off Rampart's CPU per request. mimalloc keeps freed
//! pages for a while before returning them to the system, so after the rare, large bursts
//! of allocation (compiling a rules set) [`release_free_memory`] hands them back at once, and
//! rule sets are built on threads of their own ([`on_own_thread`]) so that their memory can
//! come back at all.

mod mimalloc;

#[global_allocator]
static ALLOCATOR: mimalloc::Mimalloc = mimalloc::Mimalloc;

/// Returns the calling thread's freed memory to the system now. For use after loading
/// rules: parsing 100 000 rules frees more than the compiled set keeps, and without this the
/// resident size stays that much higher until the allocator next purges.
pub fn release_free_memory() {
    // SAFETY: mi_collect only walks mimalloc's own heaps; it takes no pointers.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Runs `job` (building a rule set) on a thread of its own, and returns its result once that
/// thread has exited; then hands the freed memory back.
///
/// mimalloc gives memory back per thread: `mi_collect` frees only pages the calling thread
/// owns. A set built on a thread that lives on (a Tokio blocking thread) stayed resident after
/// being dropped elsewhere, until its builder happened to collect again; after a burst of
/// reloads that could be never. The pages of a thread that has exited are abandoned instead,
/// and the free of their last block returns them, whichever thread drops the set. The thread
/// is also gone before `run -d` forks (a fork keeps only the forking thread).
pub fn on_own_thread<T: Send>(job: impl FnOnce() -> T + Send) -> T {
    let mut job = Some(job);
    let outcome = std::thread::scope(|scope| {
        let run = || job.take().map(|job| job());
        std::thread::Builder::new()
            .name("rampart-rules".into())
            .spawn_scoped(scope, run)
            .map(|thread| thread.join())
    });
    let result = match outcome {
        Ok(Ok(ran)) => ran.expect("the thread ran the job"),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        // No thread to be had: build here rather than not at all.
        Err(_) => job.take().expect("a thread that did not start ran nothing")(),
    };
    release_free_memory();
    result
}
