//! apt runs this on every transaction, so it skips what std's runtime does
//! before `main` (stack-guard discovery through /proc/self/maps, an
//! alternate signal stack, checking fds 0-2): C's `main` is the entry.
//! Nothing here needs those: no threads, no recursion, and a panic aborts.
#![no_main]

// `no_mangle` is the only unsafe-lint item: it names the C entry point.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    // glibc hands argc/argv to std as well (.init_array), so args_os works.
    upkeep_hookscan::front::main(std::env::args_os())
}
