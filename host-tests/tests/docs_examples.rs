//! The Python examples in docs/examples compile (`python3 -m py_compile`). They import
//! `nuke`, `NatronEngine` or Resolve's scripting module, which don't exist here, so they are
//! compiled, not run. python3 is on every CI machine.

use std::path::Path;
use std::process::Command;

#[test]
fn python_examples_compile() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("docs/examples");
    let mut files: Vec<_> = std::fs::read_dir(&docs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    // Compiled into a scratch folder, so that no __pycache__ appears in docs/.
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("docs-examples-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    for file in &files {
        let cfile = out.join(file.file_name().unwrap()).with_extension("pyc");
        let script = "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)";
        let result = Command::new("python3")
            .args(["-c", script])
            .arg(file)
            .arg(&cfile)
            .output()
            .expect("python3 runs");
        assert!(
            result.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    std::fs::remove_dir_all(&out).ok();
}
