//! The CUDA build of the node (the bundle's CUDA engine, see src/engine.rs) finds the CUDA
//! runtime libraries in the bundle's `cuda-libs` folder next to it, then on the loader's path.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let cuda = std::env::var_os("CARGO_FEATURE_CUDA").is_some();
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if cuda && linux {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,$ORIGIN/cuda-libs");
    }
}
