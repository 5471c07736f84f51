//! Small helpers every crate of the product shares, written once:
//! - [`panic_message`]: the text of a caught panic, for the error a user sees;
//! - [`lock`]: a mutex guard that ignores poisoning (a panic already reported must not turn every
//!   later call into a second panic);
//! - [`wait_until`]: waiting on a condition variable until the guarded state yields an answer;
//! - [`folders`]: the platform's cache, config and log folders for the product;
//! - [`private`]: folders and files only their owner can read (prompts are confidential);
//! - [`before_main!`]: a function run before `main`, where a test binary sets its environment.

pub mod before_main;
pub mod folders;
pub mod private;

use std::any::Any;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The message of a panic payload caught with `std::panic::catch_unwind`.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Locks `mutex`, taking the data even when another thread panicked while holding it.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks `mutex` and waits on `changed` until `ready` returns an answer for the state, or
/// `timeout` passes (then `None`). `ready` runs on every wake-up, spurious ones included.
pub fn wait_until<T, R>(
    mutex: &Mutex<T>,
    changed: &Condvar,
    timeout: Duration,
    mut ready: impl FnMut(&T) -> Option<R>,
) -> Option<R> {
    let deadline = Instant::now() + timeout;
    let mut guard = lock(mutex);
    loop {
        if let Some(answer) = ready(&guard) {
            return Some(answer);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        guard = changed
            .wait_timeout(guard, deadline - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_of_both_payload_kinds() {
        let literal = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(literal.as_ref()), "plain");
        let formatted = std::panic::catch_unwind(|| panic!("n = {}", 3)).unwrap_err();
        assert_eq!(panic_message(formatted.as_ref()), "n = 3");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(panic_message(other.as_ref()), "unknown panic");
    }

    #[test]
    fn lock_survives_a_poisoned_mutex() {
        let mutex = std::sync::Arc::new(Mutex::new(1));
        let m = mutex.clone();
        let _ = std::thread::spawn(move || {
            let _guard = m.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(mutex.is_poisoned());
        *lock(&mutex) += 1;
        assert_eq!(*lock(&mutex), 2);
    }

    #[test]
    fn wait_until_answers_once_the_state_is_ready_or_times_out() {
        let shared = std::sync::Arc::new((Mutex::new(0u32), Condvar::new()));
        let setter = shared.clone();
        let t = std::thread::spawn(move || {
            for _ in 0..3 {
                std::thread::sleep(Duration::from_millis(5));
                *lock(&setter.0) += 1;
                setter.1.notify_all();
            }
        });
        let seen = wait_until(&shared.0, &shared.1, Duration::from_secs(10), |n| {
            (*n >= 3).then_some(*n * 10)
        });
        assert_eq!(seen, Some(30));
        t.join().unwrap();
        let start = Instant::now();
        let never = wait_until(&shared.0, &shared.1, Duration::from_millis(20), |n| {
            (*n > 3).then_some(())
        });
        assert_eq!(never, None);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
