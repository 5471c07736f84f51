//! Small helpers every crate of the product shares, written once:
//! - [`panic_message`]: the text of a caught panic, for the error a user sees;
//! - [`lock`]: a mutex guard that ignores poisoning (a panic already reported must not turn every
//!   later call into a second panic);
//! - [`folders`]: the platform's cache, config and log folders for the product;
//! - [`private`]: folders and files only their owner can read (prompts are confidential);
//! - [`before_main!`]: a function run before `main`, where a test binary sets its environment.

pub mod before_main;
pub mod folders;
pub mod private;

use std::any::Any;
use std::sync::{Mutex, MutexGuard};

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
}
