//! [`before_main!`](crate::before_main): running a function before `main`, while the process
//! has one thread. It is the place for a test binary to set its environment: `std::env::set_var`
//! is not safe once threads run, and cargo's test harness runs tests on several.

/// Runs the function `$f` before `main` (`static $name` holds it in the platform's
/// initialiser section).
#[macro_export]
macro_rules! before_main {
    ($name:ident, $f:path) => {
        #[used]
        #[cfg_attr(target_os = "linux", link_section = ".init_array")]
        #[cfg_attr(target_os = "macos", link_section = "__DATA,__mod_init_func")]
        #[cfg_attr(target_os = "windows", link_section = ".CRT$XCU")]
        static $name: extern "C" fn() = {
            extern "C" fn run() {
                $f()
            }
            run
        };
    };
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    static RAN: AtomicBool = AtomicBool::new(false);

    fn mark() {
        RAN.store(true, Ordering::SeqCst);
    }

    crate::before_main!(MARK, mark);

    #[test]
    fn the_function_ran_before_any_test() {
        assert!(RAN.load(Ordering::SeqCst));
    }
}
