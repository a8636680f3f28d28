//! Limiting glibc malloc's arenas for a media host process.
//!
//! glibc gives threads that allocate concurrently arenas of their own, up to eight per core.
//! A media host has many such threads — tokio workers, blocking-pool threads negotiating
//! calls, shard threads during warm-up, recording writers — and each arena keeps its own
//! free memory and its own partly used pages, so the calls' allocations spread over many
//! arenas and the resident set grows well beyond the live heap. Measured with `mediabot
//! load --bot` against a separate `mediabot serve` (README, Load): 60 calls took ≈ 1,390 KiB
//! of RSS per call with the default arenas and ≈ 1,050 KiB with two. Shard threads do not
//! allocate after warm-up, so fewer arenas costs them no contention.

/// Arenas the binary allows (`M_ARENA_MAX`), unless `MALLOC_ARENA_MAX` is set.
pub const DEFAULT_ARENAS: i32 = 2;

/// Limits glibc malloc to `arenas` arenas, unless the environment already sets
/// `MALLOC_ARENA_MAX` (then glibc has applied it and it wins). Call at the start of `main`,
/// before threads start. Returns whether the limit was applied; always false off glibc.
pub fn limit(arenas: i32) -> bool {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return false;
    }
    set_arena_max(arenas)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_arena_max(arenas: i32) -> bool {
    // SAFETY: mallopt only changes a glibc malloc parameter; M_ARENA_MAX takes any positive
    // count and affects arenas created from now on. It is thread-safe.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas.max(1)) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_the_limit_unless_the_environment_sets_one() {
        let applied = limit(DEFAULT_ARENAS);
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            assert!(!applied);
        } else {
            assert_eq!(applied, cfg!(all(target_os = "linux", target_env = "gnu")));
        }
        // Allocation still works across threads afterwards.
        let v: Vec<Vec<u8>> = (0..4)
            .map(|i| std::thread::spawn(move || vec![i; 4096]))
            .map(|t| t.join().expect("thread"))
            .collect();
        assert_eq!(v[3][4095], 3);
    }
}
