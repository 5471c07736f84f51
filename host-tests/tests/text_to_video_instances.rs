//! The node counts its live instances (the last one going unloads the models): a
//! CreateInstance that fails and a DestroyInstance sent twice leave the count as it was. Its
//! own test binary: the log holds this plugin copy's lines only.

mod t2v_common;

use ofx_bindings::Context;
use ofx_test_host::*;
use t2v_common::*;

fn instance_lines() -> Vec<String> {
    log_text()
        .lines()
        .filter_map(|l| l.split("] instances: ").nth(1))
        .map(str::to_string)
        .collect()
}

#[test]
fn failed_creates_and_double_destroys_do_not_change_the_count() {
    let host = Host::new(HostProfile::natron());
    let plugin = node_plugin(&host);
    let a = plugin.create_instance(Context::Generator).unwrap();
    // A host that lost a parameter: CreateInstance fails, and the instance never counted.
    host.hide_param("resolution", true);
    let failed = plugin.create_instance(Context::Generator);
    assert!(
        failed.is_err(),
        "CreateInstance fails without its parameter"
    );
    host.hide_param("resolution", false);
    let c = plugin.create_instance(Context::Generator).unwrap();
    a.destroy_again().unwrap();
    // A second DestroyInstance is answered OK and changes nothing.
    a.destroy_again().unwrap();
    drop(c);
    assert_eq!(
        instance_lines(),
        ["1 live", "2 live", "1 live", "0 live; models unloaded"],
        "{}",
        log_text()
    );
    assert_eq!(
        log_text()
            .matches("destroy instance: no instance data (already destroyed)")
            .count(),
        2
    );
    // Nothing is left over: a new instance is the only one.
    let d = plugin.create_instance(Context::Generator).unwrap();
    drop(d);
    assert_eq!(instance_lines()[4..], ["1 live", "0 live; models unloaded"]);
}
