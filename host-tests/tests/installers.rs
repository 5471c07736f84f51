//! The installers in `installers/`: the Linux scripts install a built bundle where a host finds
//! it through `OFX_PLUGIN_PATH` (checked by rendering with `ofx-render` in a subprocess, so this
//! process's environment is never changed), reinstalling is harmless, and uninstalling removes
//! it. Every shell script passes `bash -n`; the PowerShell scripts get a structural check only
//! (no PowerShell on these machines: see `powershell_scripts_are_well_formed`).

mod t2v_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn installers() -> PathBuf {
    workspace().join("installers")
}

fn files_with_extension(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_with_extension(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A fresh folder for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("installers-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn script(os: &str, name: &str) -> Command {
    let mut command = Command::new("bash");
    command.arg(installers().join(os).join(name));
    command
}

/// Renders two frames of the node found by bundle name on `plugin_path` only.
fn render_through_plugin_path(plugin_path: &Path, scratch: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ofx-render"))
        .args([
            "--bundle",
            "TextToVideo",
            "--background",
            "--frames",
            "1-2",
            "--size",
            "64x64",
        ])
        .arg("--set")
        .arg(format!("model={}", t2v_common::tiny_model().display()))
        .args([
            "--set",
            "prompt=a red circle",
            "--set",
            "resolution=custom",
            "--set",
            "width=64",
            "--set",
            "height=64",
        ])
        .args(["--set", "frames=5", "--set", "steps=2"])
        .arg("--output")
        .arg(scratch.join("out/node.%04d.png"))
        .env("OFX_PLUGIN_PATH", plugin_path)
        .env("T2V_LOG", scratch.join("plugin.log"))
        .env("T2V_CACHE_DIR", scratch.join("cache"))
        .env("T2V_DEVICE", "cpu")
        .output()
        .unwrap()
}

#[test]
fn linux_install_is_found_on_the_plugin_path_and_uninstall_removes_it() {
    let bundle = t2v_common::bundle();
    let dir = temp_dir("linux");
    let prefix = dir.join("OFX/Plugins");

    let install = script("linux", "install.sh")
        .arg("--prefix")
        .arg(&prefix)
        .arg("--bundle")
        .arg(&bundle)
        .output()
        .unwrap();
    let said = text(&install);
    assert!(install.status.success(), "{said}");
    let installed = prefix.join("TextToVideo.ofx.bundle");
    assert!(
        said.contains(&format!("installed {}", installed.display())),
        "{said}"
    );
    assert!(
        said.contains("OFX_PLUGIN_PATH"),
        "a non-default prefix must say how hosts find it: {said}"
    );
    assert!(installed
        .join("Contents/Linux-x86-64/TextToVideo.ofx")
        .is_file());
    assert!(
        installed
            .join("Contents/Resources/org.texttovideo.TextToVideo.png")
            .is_file(),
        "the whole bundle, Resources included"
    );
    let source_files = count_files(&bundle);
    assert_eq!(
        count_files(&installed),
        source_files,
        "every file of the bundle is copied"
    );

    // Again: the same result, and it says so.
    let again = script("linux", "install.sh")
        .arg("--prefix")
        .arg(&prefix)
        .arg("--bundle")
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("replaced the earlier install"),
        "{}",
        text(&again)
    );
    assert_eq!(count_files(&installed), source_files);
    let leftovers: Vec<_> = std::fs::read_dir(&prefix)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "only the bundle in the prefix: {leftovers:?}"
    );

    // A host finds and runs it through OFX_PLUGIN_PATH.
    let scratch = dir.join("render");
    let render = render_through_plugin_path(&prefix, &scratch);
    assert!(render.status.success(), "{}", text(&render));
    assert!(
        text(&render).contains("org.texttovideo.TextToVideo v1.0"),
        "{}",
        text(&render)
    );
    for frame in [1, 2] {
        let png = image::open(scratch.join(format!("out/node.{frame:04}.png"))).unwrap();
        assert_eq!((png.width(), png.height()), (64, 64));
    }
    assert!(std::fs::read_to_string(scratch.join("plugin.log"))
        .unwrap()
        .contains("load: TextToVideo"));

    let uninstall = script("linux", "uninstall.sh")
        .arg("--prefix")
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(uninstall.status.success(), "{}", text(&uninstall));
    assert!(
        text(&uninstall).contains(&format!("removed {}", installed.display())),
        "{}",
        text(&uninstall)
    );
    assert!(!installed.exists());
    if !Path::new("/usr/OFX/Plugins/TextToVideo.ofx.bundle").exists() {
        let gone = render_through_plugin_path(&prefix, &dir.join("render-after"));
        assert!(
            !gone.status.success(),
            "no bundle left to find: {}",
            text(&gone)
        );
        assert!(
            text(&gone).contains("no bundle TextToVideo.ofx.bundle"),
            "{}",
            text(&gone)
        );
    }
    // Uninstalling twice is not an error.
    let twice = script("linux", "uninstall.sh")
        .arg("--prefix")
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(twice.status.success(), "{}", text(&twice));
    assert!(
        text(&twice).contains("nothing to remove"),
        "{}",
        text(&twice)
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn linux_user_install_goes_to_the_users_data_folder() {
    let bundle = t2v_common::bundle();
    let home = temp_dir("user");
    let run = |name: &str| {
        script("linux", name)
            .arg("--user")
            .args(if name == "install.sh" {
                vec!["--bundle".into(), bundle.clone().into_os_string()]
            } else {
                vec![]
            })
            .env("HOME", &home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("OFX_PLUGIN_PATH")
            .output()
            .unwrap()
    };
    let install = run("install.sh");
    assert!(install.status.success(), "{}", text(&install));
    let folder = home.join(".local/share/OFX/Plugins");
    assert!(folder
        .join("TextToVideo.ofx.bundle/Contents/Linux-x86-64/TextToVideo.ofx")
        .is_file());
    assert!(
        text(&install).contains(&format!("export OFX_PLUGIN_PATH=\"{}", folder.display())),
        "{}",
        text(&install)
    );
    let uninstall = run("uninstall.sh");
    assert!(uninstall.status.success(), "{}", text(&uninstall));
    assert!(!folder.join("TextToVideo.ofx.bundle").exists());
    std::fs::remove_dir_all(&home).ok();
}

#[test]
fn linux_install_explains_what_is_wrong() {
    let dir = temp_dir("errors");
    let missing = script("linux", "install.sh")
        .arg("--prefix")
        .arg(dir.join("P"))
        .arg("--bundle")
        .arg(dir.join("nothing"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing).contains("is not a folder"),
        "{}",
        text(&missing)
    );

    // A folder that is not a Linux build.
    let fake = dir.join("TextToVideo.ofx.bundle/Contents/MacOS");
    std::fs::create_dir_all(&fake).unwrap();
    let wrong = script("linux", "install.sh")
        .arg("--prefix")
        .arg(dir.join("P"))
        .arg("--bundle")
        .arg(fake.parent().unwrap().parent().unwrap())
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong).contains("not built for Linux"),
        "{}",
        text(&wrong)
    );
    assert!(!dir.join("P/TextToVideo.ofx.bundle").exists());

    let both = script("linux", "install.sh")
        .args(["--user", "--prefix", "/tmp/x"])
        .output()
        .unwrap();
    assert!(!both.status.success());
    assert!(
        text(&both).contains("either --prefix or --user"),
        "{}",
        text(&both)
    );
    let help = script("linux", "install.sh")
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        help.status.success() && text(&help).contains("/usr/OFX/Plugins"),
        "{}",
        text(&help)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn shell_scripts_pass_bash_syntax_check() {
    let mut scripts = Vec::new();
    files_with_extension(&installers(), "sh", &mut scripts);
    scripts.push(workspace().join("plugin/build-bundle.sh"));
    assert!(scripts.len() >= 6, "{scripts:?}");
    for path in &scripts {
        let out = Command::new("bash").arg("-n").arg(path).output().unwrap();
        assert!(
            out.status.success(),
            "bash -n {}: {}",
            path.display(),
            text(&out)
        );
    }
}

#[test]
fn installers_never_touch_the_network() {
    let mut scripts = Vec::new();
    files_with_extension(&installers(), "sh", &mut scripts);
    files_with_extension(&installers(), "ps1", &mut scripts);
    for path in scripts {
        let source = std::fs::read_to_string(&path).unwrap().to_lowercase();
        for word in [
            "curl ",
            "wget ",
            "invoke-webrequest",
            "invoke-restmethod",
            "start-bitstransfer",
            "net.webclient",
        ] {
            assert!(!source.contains(word), "{} uses {word}", path.display());
        }
    }
}

/// PowerShell can't be installed here, so this is a structural check, not a parse: brackets
/// balance outside strings and comments, there is a `param(...)` block, errors stop the script,
/// and no bash syntax slipped in. Run the scripts on Windows to test them for real.
#[test]
fn powershell_scripts_are_well_formed() {
    let mut scripts = Vec::new();
    files_with_extension(&installers(), "ps1", &mut scripts);
    scripts.sort();
    let names: Vec<_> = scripts
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["build.ps1", "install.ps1", "uninstall.ps1"]);
    for path in &scripts {
        let source = std::fs::read_to_string(path).unwrap();
        let name = path.display();
        if let Err(e) = check_brackets(&source) {
            panic!("{name}: {e}");
        }
        assert!(source.contains("param("), "{name}: no param block");
        assert!(
            source.contains("$ErrorActionPreference = \"Stop\""),
            "{name}: errors must stop the script"
        );
        for (n, line) in source.lines().enumerate() {
            let code = line.split('#').next().unwrap_or("").trim();
            let words: Vec<&str> = code.split_whitespace().collect();
            let bashism = code.starts_with("#!")
                || ["fi", "then", "done", "esac", "do", "elif"]
                    .iter()
                    .any(|w| words.first() == Some(w))
                || words
                    .first()
                    .is_some_and(|w| *w == "export" || *w == "local")
                || code.contains(" && ")
                || code.contains(" || ")
                || code.contains("[ -");
            assert!(!bashism, "{name}:{}: looks like bash: {line}", n + 1);
        }
    }
}

/// Brackets balance outside quoted strings and `#` comments (PowerShell strings: '...' and
/// "..." with ` as the escape character).
fn check_brackets(source: &str) -> Result<(), String> {
    let mut stack = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let mut chars = line.chars();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match quote {
                Some(q) => {
                    if c == '`' && q == '"' {
                        chars.next();
                    } else if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    '#' => break,
                    '"' | '\'' => quote = Some(c),
                    '(' | '{' | '[' => stack.push((c, n + 1)),
                    ')' | '}' | ']' => {
                        let open = match c {
                            ')' => '(',
                            '}' => '{',
                            _ => '[',
                        };
                        match stack.pop() {
                            Some((o, _)) if o == open => {}
                            Some((o, at)) => {
                                return Err(format!("line {}: {c} closes {o} of line {at}", n + 1))
                            }
                            None => return Err(format!("line {}: {c} closes nothing", n + 1)),
                        }
                    }
                    _ => {}
                },
            }
        }
        if let Some(q) = quote {
            return Err(format!("line {}: unterminated {q} string", n + 1));
        }
    }
    match stack.pop() {
        Some((o, at)) => Err(format!("{o} of line {at} is never closed")),
        None => Ok(()),
    }
}

#[test]
fn the_bracket_check_catches_mistakes() {
    assert!(check_brackets("if ($a) { Write-Output \"x)\" } # (").is_ok());
    assert!(check_brackets("if ($a) { Write-Output 'x'").is_err());
    assert!(check_brackets("foo(]").is_err());
    assert!(check_brackets("\"open").is_err());
}
