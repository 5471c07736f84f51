//! Compiles the C shim that implements the host's C-variadic suite functions.
fn main() {
    println!("cargo:rerun-if-changed=shim/varargs.c");
    cc::Build::new()
        .file("shim/varargs.c")
        .warnings(true)
        .extra_warnings(true)
        .compile("ofx_host_varargs");
}
