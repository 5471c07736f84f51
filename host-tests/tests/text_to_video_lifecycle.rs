//! Load, unload and reload the Text to Video bundle in one process (its own test binary, so
//! that no other test's threads are counted): no crash, and no `t2v-*` thread left behind
//! after each Unload.

mod t2v_common;

use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::*;
use t2v_common::*;

/// Threads of this process whose name starts with `prefix`.
fn threads(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .filter(|name| name.starts_with(prefix))
        .collect()
}

#[test]
fn load_unload_and_reload_leave_no_thread_behind() {
    let bundle = bundle();
    let mut pool_size = None;
    for round in 0..3 {
        let mut host = Host::new(HostProfile::natron());
        // The bundle's own file, as a real host loads it: the same binary every round.
        host.set_isolated_loading(false);
        {
            let loaded = host.load_bundle(&bundle).unwrap();
            let plugin = loaded.plugin(Some(ID)).unwrap();
            let instance = plugin.create_instance(Context::Generator).unwrap();
            configure(
                &instance,
                &format!("lifecycle round {round}: a kite"),
                round,
            );
            instance.push_button("generate").unwrap();
            assert!(
                string_param(&instance, "status").starts_with("Ready"),
                "round {round}: {}",
                string_param(&instance, "status")
            );
            instance.render(1.0, PixelDepth::Float, 0).unwrap();
            assert!(!threads("t2v-").is_empty(), "the service runs while loaded");
            instance.purge_caches().unwrap();
        }
        // The last Plugin and Bundle are gone: Unload was sent, then the binary was closed.
        assert!(host
            .actions()
            .last()
            .is_some_and(|a| a == "OfxActionUnload"));
        assert_eq!(
            threads("t2v-"),
            Vec::<String>::new(),
            "round {round}: every t2v thread joined by Unload"
        );
        // candle's CPU pool (rayon's global pool) lives as long as the process, in the pinned
        // binary: a reload reuses it instead of starting another.
        let pool = threads("candle-cpu-").len();
        assert_eq!(
            *pool_size.get_or_insert(pool),
            pool,
            "round {round}: no new pool threads"
        );
    }
    let log = log_text();
    assert_eq!(
        log.matches("unload: every service thread joined").count(),
        3
    );
    assert_eq!(log.matches("pinned true").count(), 3);
}
