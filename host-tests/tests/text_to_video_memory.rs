//! One frame memory budget for all node instances of a process: with room for two small clips,
//! a third releases the least recently used one, and the node whose clip was released shows
//! it again on its next render, read from the clip cache, without an error. Its own test
//! binary: `$T2V_FRAME_MEMORY_MB` is set before `main`.

mod t2v_common;

use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::*;
use t2v_common::*;

/// Room for two clips of 64x64x5 (122,880 bytes of frames each, plus their latents).
fn set_budget() {
    std::env::set_var("T2V_FRAME_MEMORY_MB", "0.3");
}
before_main!(SET_BUDGET, set_budget);

fn released(tag: &str) -> usize {
    log_text()
        .lines()
        .filter(|l| l.contains("frame memory: released clip") && l.contains(tag))
        .count()
}

/// Waits for the job that read a clip again to end, and has it announced (the next
/// main-thread action holds the clip again).
fn settled(node: &Instance) {
    for _ in 0..1000 {
        node.sync_private_data().unwrap();
        if string_param(node, "status").starts_with("Ready") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("not ready: {}", string_param(node, "status"));
}

#[test]
fn the_least_recently_used_clip_is_released_and_read_again() {
    let host = Host::new(HostProfile::natron());
    let plugin = node_plugin(&host);
    let prompts = ["memory: clip one", "memory: clip two", "memory: clip three"];
    let nodes: Vec<Instance> = prompts
        .iter()
        .enumerate()
        .map(|(i, prompt)| {
            let node = plugin.create_instance(Context::Generator).unwrap();
            configure(&node, prompt, 40 + i as i32);
            node
        })
        .collect();
    let render = |i: usize, t: f64| nodes[i].render(t, PixelDepth::Float, 0).unwrap();
    let expected: Vec<_> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| reference(p, 40 + i as u64))
        .collect();

    nodes[0].push_button("generate").unwrap();
    nodes[1].push_button("generate").unwrap();
    assert_shows(&render(0, 1.0), &expected[0][0]); // clip one: used after clip two
    assert_eq!(released("memory: clip"), 0, "two clips fit");
    nodes[2].push_button("generate").unwrap();
    assert_eq!(released("clip two"), 1, "the least recently used clip goes");
    assert_eq!(released("clip one"), 0);
    nodes[1].sync_private_data().unwrap(); // its status is updated on the main thread
    assert!(
        string_param(&nodes[1], "status").contains("released from memory"),
        "{}",
        string_param(&nodes[1], "status")
    );

    // Its next render reads it again from the clip cache: the same pixels, no error.
    for t in [2.0, 5.0] {
        assert_shows(&render(1, t), &expected[1][t as usize - 1]);
    }
    settled(&nodes[1]);
    let status = string_param(&nodes[1], "status");
    assert!(
        status.starts_with("Ready: 5 frames") && status.contains("from the cache"),
        "{status}"
    );
    // Holding it again released the least recently used of the others: clip one.
    assert_eq!(released("clip one"), 1);
    assert_eq!(released("clip three"), 0);
    // Clip one again: now clip three is the least recently used (clip two was just shown).
    assert_shows(&render(0, 3.0), &expected[0][2]);
    settled(&nodes[0]);
    assert_eq!(released("clip three"), 1);
    assert_eq!(released("clip two"), 1);
    assert_shows(&render(2, 4.0), &expected[2][3]);
    assert_eq!(
        log_text()
            .matches("was released from memory; reading it again")
            .count(),
        3,
        "clips two, one and three read again"
    );
}
