//! The memory allocator: mimalloc, for every binary that links this library.
//!
//! Measured in `docs/performance.md`: glibc's malloc is about a third of a proxied request's
//! instructions; mimalloc takes ~18 % off Rampart's CPU per request. mimalloc keeps freed
//! pages for a while before returning them to the system, so after the rare, large bursts
//! of allocation (compiling a rules set) [`release_free_memory`] hands them back at once, on
//! the one thread where rule sets are built and freed ([`on_memory_thread`]).

use std::sync::mpsc::Sender;
use std::sync::OnceLock;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns the calling thread's freed memory to the system now. For use after loading
/// rules: parsing 100 000 rules frees more than the compiled set keeps, and without this the
/// resident size stays that much higher until the allocator next purges.
pub fn release_free_memory() {
    // SAFETY: mi_collect only walks mimalloc's own heaps; it takes no pointers.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// A job for the memory thread.
type Job = Box<dyn FnOnce() + Send>;

/// The thread that builds and frees rule sets. mimalloc hands memory back per thread:
/// `mi_collect` frees the calling thread's pages, including blocks other threads freed into
/// them, but not pages another thread owns. A set compiled on one thread and dropped on another
/// therefore stayed resident until its compiling thread happened to collect, which after a burst
/// of reloads could be never. Building, dropping and collecting on one thread makes the memory
/// come back every time.
fn memory_thread() -> Option<&'static Sender<Job>> {
    static THREAD: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    THREAD
        .get_or_init(|| {
            let (jobs, queue) = std::sync::mpsc::channel::<Job>();
            let spawned = std::thread::Builder::new()
                .name("rampart-rules-memory".into())
                .spawn(move || {
                    for job in queue {
                        job();
                        release_free_memory();
                    }
                });
            match spawned {
                Ok(_) => Some(jobs),
                Err(e) => {
                    log::warn!("cannot start the rules memory thread ({e}); rule sets are built and freed where needed");
                    None
                }
            }
        })
        .as_ref()
}

/// Runs `job` on the memory thread, waits for its result, and hands the memory it freed back.
/// A panic in `job` is resumed here.
pub fn on_memory_thread<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> T {
    let Some(thread) = memory_thread() else {
        let result = job();
        release_free_memory();
        return result;
    };
    let (reply, result) = std::sync::mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = reply.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)));
    });
    thread.send(job).expect("the memory thread never stops");
    match result.recv().expect("the memory thread answers every job") {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Drops `value` on the memory thread, without waiting, and hands its memory back.
pub fn drop_on_memory_thread<T: Send + 'static>(value: T) {
    match memory_thread() {
        Some(thread) => {
            let _ = thread.send(Box::new(move || drop(value)));
        }
        None => {
            drop(value);
            release_free_memory();
        }
    }
}
