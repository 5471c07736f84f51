//! The node in a real OpenFX host nobody on this project wrote: NatronRenderer (Natron 2.5,
//! headless), driven through its Python API (`NatronRenderer -t host-tests/natron/driver.py`)
//! and through saved projects (`NatronRenderer -w Write1 1-17 project.ntp`), each result
//! compared with what our own `t2v generate` makes for the same settings.
//!
//! Needs NatronRenderer, so every test is ignored by `cargo test`; `.ci/run` builds Natron 2.5
//! into `~/.cache/t2v-natron` (or use a Natron 2.5 of your own) and runs them:
//!
//! ```sh
//! NATRON_RENDERER=~/.cache/t2v-natron/bin/NatronRenderer \
//! NATRON_PLUGINS=~/.cache/t2v-natron/Plugins/OFX:~/.cache/t2v-natron/Plugins/OFX-misc \
//!   cargo test --release -p ofx-test-host --test natron_host -- --ignored --test-threads=1
//! ```
//!
//! NatronRenderer 2.5 crashes in its own Python shutdown after a `-t` script has rendered (with
//! any plugin, Natron's own generators too): these tests judge the frames, the driver's report
//! and the log lines, never the exit code of a `-t` run. `-w` runs exit on their own, and
//! that is checked.

mod natron_support;
mod t2v_common;

use natron_support::images::{self, linear_to_rec709, srgb_to_linear, Image};
use natron_support::*;
use serde_json::{json, Value};
use std::path::Path;

const PROMPT: &str = "a red circle moves to the right on a black background";
const SEED: u64 = 7;
/// The node hands out the clip cache's 16-bit frames; `t2v --save-frames` writes the same
/// values (measured: identical), so float frames agree within one 16-bit step.
const STEP: f32 = 1.0 / 65535.0;

/// The node on the demo model (empty Model Path): its own 256x160, 17 frames, 16 steps.
fn node(name: &str, params: Value) -> Value {
    let mut p = json!({"prompt": PROMPT, "seed": SEED});
    p.as_object_mut()
        .unwrap()
        .extend(params.as_object().unwrap().clone());
    json!({"name": name, "plugin": ID, "params": p})
}

fn writer(name: &str, plugin: &str, input: &str, file: &Path, first: i64, last: i64) -> Value {
    json!({"name": name, "plugin": format!("fr.inria.openfx.{plugin}"), "input": input,
           "filename": file, "first": first, "last": last})
}

/// Renders `nodes` through `writers` in a project of the clip's size.
fn render(dir: &Path, nodes: Vec<Value>, writers: Vec<Value>) -> Value {
    render_in(dir, Some([WIDTH, HEIGHT]), nodes, writers)
}

/// Renders `nodes` through `writers`; with no project `format`, Natron's default project
/// (1920x1080) and writers that write their input's format: the size comes from the node alone.
fn render_in(
    dir: &Path,
    format: Option<[usize; 2]>,
    nodes: Vec<Value>,
    writers: Vec<Value>,
) -> Value {
    let job = json!({"mode": "graph", "format": format, "nodes": nodes,
                     "writers": writers, "rods": [["t2v", 1]]});
    let (run, report) = drive(dir, &shared_cache(), job);
    let failed = failed_renders(&report);
    assert!(
        failed.is_empty(),
        "{failed:?}\n{}\n{}",
        run.output,
        run.plugin_log
    );
    report
}

/// Largest difference between `image` and `expected(x, y, channel)` over RGB.
fn max_difference(image: &Image, expected: impl Fn(usize, usize, usize) -> f32) -> f32 {
    let mut worst = 0f32;
    for y in 0..image.height {
        for x in 0..image.width {
            for c in 0..3 {
                worst = worst.max((image.at(x, y)[c] - expected(x, y, c)).abs());
            }
        }
    }
    worst
}

fn assert_clip_size(image: &Image, what: &str) {
    assert_eq!(
        (image.width, image.height),
        (WIDTH, HEIGHT),
        "{what}: Natron wrote the wrong size"
    );
}

// ---------------------------------------------------------------------------------------------
// The node as Natron lists it

/// One row of the parameter table of docs/node.md.
struct DocumentedParam {
    name: String,
    kind: String,
    default: String,
    /// Choices: the labels the docs give, in index order.
    labels: Vec<String>,
}

fn documented_params() -> Vec<DocumentedParam> {
    let doc = std::fs::read_to_string(workspace().join("docs/node.md")).unwrap();
    let section = doc
        .split("\n## Parameters")
        .nth(1)
        .expect("docs/node.md: ## Parameters");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            DocumentedParam {
                name: cells[1].trim_matches('`').to_string(),
                kind: cells[3].to_string(),
                default: cells[5].to_string(),
                labels: choice_labels(cells[4]),
            }
        })
        .collect()
}

/// "`unipc` (0), `euler` (1)" -> ["unipc", "euler"]: labels followed by their index.
fn choice_labels(cell: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let parts: Vec<&str> = cell.split('`').collect();
    for i in (1..parts.len()).step_by(2) {
        let after = parts.get(i + 1).copied().unwrap_or("");
        let index = after
            .strip_prefix(" (")
            .and_then(|r| r.split_once(')'))
            .and_then(|(n, _)| n.parse::<usize>().ok());
        if let Some(index) = index {
            assert_eq!(index, labels.len(), "docs/node.md: {cell}");
            labels.push(parts[i].to_string());
        }
    }
    labels
}

/// Natron's Python class for a documented type, and a value to set (differing from the default).
fn natron_type_and_value(p: &DocumentedParam) -> (&'static str, Option<Value>) {
    let kind = p.kind.as_str();
    if kind == "push button" {
        ("ButtonParam", None)
    } else if kind == "choice" {
        ("ChoiceParam", None)
    } else if kind.starts_with("string, directory") {
        ("PathParam", Some(json!("/tmp/set-from-natron")))
    } else if kind.starts_with("string, file") {
        // An OFX file-path string whose file is read (kOfxParamPropStringFilePathExists).
        ("FileParam", Some(json!("/tmp/set-from-natron.pth")))
    } else if kind.starts_with("string") {
        ("StringParam", Some(json!("set from Natron")))
    } else if kind.starts_with("int") {
        let default: i64 = p.default.parse().unwrap();
        ("IntParam", Some(json!(default + 1)))
    } else if kind.starts_with("double") {
        let default: f64 = p.default.parse().unwrap();
        ("DoubleParam", Some(json!(default + 0.5)))
    } else if kind == "boolean" {
        ("BooleanParam", Some(json!(p.default != "on")))
    } else {
        panic!("docs/node.md: unknown type {kind:?} of {}", p.name)
    }
}

/// The default the docs give, as Natron reports it (`None`: none documented).
fn documented_default(p: &DocumentedParam) -> Option<Value> {
    match p.default.as_str() {
        "" => None,
        "empty" => Some(json!("")),
        // A choice's default is one of its options (`off` included, as for `upscale`).
        d if p.kind == "choice" => {
            let index = p.labels.iter().position(|l| l == d);
            Some(json!(
                index.unwrap_or_else(|| panic!("{}: default {d}", p.name))
            ))
        }
        "on" => Some(json!(true)),
        "off" => Some(json!(false)),
        d if p.kind.starts_with("string") => Some(json!(d.trim_matches('`'))),
        d if p.kind.starts_with("int") => Some(json!(d.parse::<i64>().unwrap())),
        d => Some(json!(d.parse::<f64>().unwrap())),
    }
}

/// Natron's plugin cache records what it read from our descriptor: the grouping (menu).
fn grouping_in_natron_cache(home: &Path) -> String {
    let dir = home.join(".cache/INRIA/Natron/OFXLoadCache");
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let xml = std::fs::read_to_string(entry.path()).unwrap();
        if let Some(plugin) = xml.split(&format!("<plugin name=\"{ID}\"")).nth(1) {
            let plugin = plugin.split("</plugin>").next().unwrap();
            let prop = plugin
                .split("name=\"OfxImageEffectPluginPropGrouping\"")
                .nth(1)
                .expect("grouping property");
            let value = prop.split("value=\"").nth(1).unwrap();
            return value.split('"').next().unwrap().to_string();
        }
    }
    panic!("{ID} is not in Natron's plugin cache in {}", dir.display())
}

#[test]
#[ignore = "needs NatronRenderer: NATRON_RENDERER=... NATRON_PLUGINS=... (see README)"]
fn the_node_is_listed_with_every_documented_parameter() {
    let dir = test_dir("params");
    let documented = documented_params();
    assert!(documented.len() >= 20, "docs/node.md's parameter table");
    let params: Vec<Value> = documented
        .iter()
        .map(|p| {
            let mut entry = json!({"name": p.name, "labels": p.labels});
            if let (_, Some(v)) = natron_type_and_value(p) {
                entry["set"] = v;
            }
            entry
        })
        .collect();
    let job = json!({"mode": "params", "plugin": ID, "params": params});
    let (run, report) = drive(&dir, &shared_cache(), job);

    assert_eq!(report["plugin_listed"], json!(true), "{}", run.output);
    assert_eq!(report["plugin_id"], json!(ID));
    assert!(
        report["label"]
            .as_str()
            .unwrap()
            .starts_with("Text_to_Video"),
        "node label {}",
        report["label"]
    );
    assert_eq!(report["inputs"], json!(["Source"]), "one optional input");
    assert_eq!(grouping_in_natron_cache(&run.home), "AI");

    for p in &documented {
        let seen = &report["params"][&p.name];
        assert!(seen.is_object(), "Natron has no parameter {}", p.name);
        let (class, set) = natron_type_and_value(p);
        assert_eq!(seen["type"], json!(class), "{}", p.name);
        if let Some(default) = documented_default(p) {
            assert_eq!(seen["default"], default, "default of {}", p.name);
        }
        if let Some(set) = set {
            assert_eq!(seen["after_set"], set, "{} set from Python", p.name);
        }
        if p.kind == "choice" {
            let options: Vec<String> = serde_json::from_value(seen["options"].clone()).unwrap();
            assert!(
                options.starts_with(&p.labels),
                "{}: Natron's options {options:?}, documented {:?}",
                p.name,
                p.labels
            );
            let indices: Vec<usize> = (0..p.labels.len()).collect();
            assert_eq!(seen["by_index"], json!(indices), "{} by index", p.name);
            assert_eq!(seen["by_label"], json!(indices), "{} by label", p.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Frames

#[test]
#[ignore = "needs NatronRenderer: NATRON_RENDERER=... NATRON_PLUGINS=... (see README)"]
fn frames_have_the_clips_size_and_pixels_and_hold_outside_the_clip() {
    let dir = test_dir("frames");
    // The clip starts at frame 3: frames 1-2 hold its first frame, 20-21 its last.
    let t2v = node("t2v", json!({"colour": "sRGB display", "first_frame": 3}));
    let pfm = dir.join("f_###.pfm");
    let report = render_in(
        &dir,
        None,
        vec![t2v],
        vec![writer("Write1", "WritePFM", "t2v", &pfm, 1, 21)],
    );
    assert_eq!(
        report["rods"][0][2],
        json!([0.0, 0.0, WIDTH as f64, HEIGHT as f64]),
        "region of definition Natron got"
    );
    let cli = cli_clip(PROMPT, SEED, &[]);
    let mut worst = 0f32;
    for t in 1..=21i64 {
        let image = images::read_pfm(&frame_file(&dir, "f_###.pfm", t));
        assert_clip_size(&image, &format!("frame {t}"));
        let f = (t - 3).clamp(0, FRAMES as i64 - 1) as usize;
        let d = max_difference(&image, |x, y, c| cli.float(f, x, y)[c]);
        assert!(
            d <= STEP,
            "frame {t} (clip frame {f}) differs from t2v's by {d}"
        );
        worst = worst.max(d);
    }
    eprintln!("frames: largest difference from t2v --save-frames: {worst}");
}

// ---------------------------------------------------------------------------------------------
// Colour

/// The node's PNG frames as Natron's PNG writer (which encodes the working space, linear, to
/// sRGB) wrote them, compared code for code with `t2v generate`'s PNGs.
fn assert_png_writer_matches_cli(test: &str, colour: Option<&str>) {
    let dir = test_dir(test);
    let params = colour.map_or(json!({}), |c| json!({"colour": c}));
    let png = dir.join("f_###.png");
    render(
        &dir,
        vec![node("t2v", params)],
        vec![writer("Write1", "WritePNG", "t2v", &png, 1, FRAMES as i64)],
    );
    let cli = cli_clip(PROMPT, SEED, &[]);
    for t in 1..=FRAMES {
        let natron = images::read_png(&frame_file(&dir, "f_###.png", t as i64));
        assert_clip_size(&natron, "PNG");
        let ours = &cli.pngs[t - 1];
        let mut worst = 0i32;
        let mut at = (0, 0);
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let (a, b) = (natron.codes(x, y), ours.codes(x, y));
                for c in 0..3 {
                    let d = (a[c] as i32 - b[c] as i32).abs();
                    if d > worst {
                        (worst, at) = (d, (x, y));
                    }
                }
            }
        }
        assert!(
            worst <= 1,
            "frame {t}: Natron's PNG writer wrote {:?} at {at:?} where t2v wrote {:?} \
             (colour {colour:?}; a double sRGB encoding brightens dark values)",
            natron.codes(at.0, at.1),
            ours.codes(at.0, at.1)
        );
    }
}

#[test]
#[ignore = "needs NatronRenderer: NATRON_RENDERER=... NATRON_PLUGINS=... (see README)"]
fn default_colour_png_writer_gives_the_clis_pngs() {
    assert_png_writer_matches_cli("colour-default", None);
}

#[test]
#[ignore = "needs NatronRenderer: NATRON_RENDERER=... NATRON_PLUGINS=... (see README)"]
fn linear_and_rec709_are_as_documented() {
    // Linear in a linear host: Natron's PNG writer gives back t2v's sRGB frames.
    assert_png_writer_matches_cli("colour-linear-png", Some("linear"));

    let dir = test_dir("colour-float");
    render(
        &dir,
        vec![
            node("t2v", json!({"colour": "linear"})),
            node("rec709", json!({"colour": "Rec.709"})),
        ],
        vec![
            writer(
                "WriteLinear",
                "WritePFM",
                "t2v",
                &dir.join("lin_###.pfm"),
                1,
                17,
            ),
            writer(
                "Write709",
                "WritePFM",
                "rec709",
                &dir.join("709_###.pfm"),
                1,
                17,
            ),
        ],
    );
    let cli = cli_clip(PROMPT, SEED, &[]);
    for t in 1..=FRAMES {
        let f = t - 1;
        let linear = images::read_pfm(&frame_file(&dir, "lin_###.pfm", t as i64));
        let rec709 = images::read_pfm(&frame_file(&dir, "709_###.pfm", t as i64));
        assert_clip_size(&linear, "linear");
        let d = max_difference(&linear, |x, y, c| srgb_to_linear(cli.float(f, x, y)[c]));
        assert!(d <= 1e-3, "linear frame {t} differs by {d}");
        let d = max_difference(&rec709, |x, y, c| {
            linear_to_rec709(srgb_to_linear(cli.float(f, x, y)[c]))
        });
        assert!(d <= 2e-3, "Rec.709 frame {t} differs by {d}");
    }
}

// ---------------------------------------------------------------------------------------------
// Image to video

#[test]
#[ignore = "needs NatronRenderer: NATRON_RENDERER=... NATRON_PLUGINS=... (see README)"]
fn a_natron_checkerboard_on_source_gives_t2v_images_first_frame() {
    let dir = test_dir("i2v");
    let checker = json!({"name": "checker", "plugin": "net.sf.openfx.CheckerBoardPlugin",
        "params": {"boxSize": [48, 40], "color0": [0.9, 0.2, 0.1, 1.0],
                   "color1": [0.1, 0.3, 0.8, 1.0], "color2": [0.95, 0.9, 0.2, 1.0],
                   "color3": [0.05, 0.05, 0.05, 1.0]}});
    let mut t2v = node(
        "t2v",
        json!({"colour": "sRGB display", "prompt": "a white square moves down"}),
    );
    t2v["inputs"] = json!({"0": "checker"});
    render(
        &dir,
        vec![checker, t2v],
        vec![
            writer(
                "WriteChecker",
                "WritePFM",
                "checker",
                &dir.join("checker_###.pfm"),
                1,
                1,
            ),
            writer(
                "Write1",
                "WritePFM",
                "t2v",
                &dir.join("f_###.pfm"),
                1,
                FRAMES as i64,
            ),
        ],
    );
    // What Natron handed the node's Source input, as the PNG a user would give t2v.
    let source = images::read_pfm(&frame_file(&dir, "checker_###.pfm", 1));
    assert_clip_size(&source, "checkerboard");
    let colours: std::collections::HashSet<[u8; 3]> = (0..HEIGHT)
        .flat_map(|y| (0..WIDTH).map(move |x| (x, y)))
        .map(|(x, y)| source.codes(x, y))
        .collect();
    assert!(
        colours.len() >= 4,
        "the checkerboard has its colours: {colours:?}"
    );
    let png = dir.join("source.png");
    source.write_png(&png);
    let cli = cli_clip(
        "a white square moves down",
        SEED,
        &["--image", png.to_str().unwrap()],
    );
    for t in [1, FRAMES] {
        let image = images::read_pfm(&frame_file(&dir, "f_###.pfm", t as i64));
        let d = max_difference(&image, |x, y, c| cli.float(t - 1, x, y)[c]);
        assert!(d <= STEP, "frame {t} differs from t2v --image's by {d}");
    }
}

// ---------------------------------------------------------------------------------------------
// The docs' example

#[test]
#[ignore = "needs NatronRenderer: NATRON_RENDERER=... NATRON_PLUGINS=... (see README)"]
fn the_docs_natron_example_runs_as_written() {
    let dir = test_dir("docs-example");
    let example =
        std::fs::read_to_string(workspace().join("docs/examples/natron_text_to_video.py")).unwrap();
    // Only the model path (to the demo model, an empty path) and the writer change: this
    // Natron has no OpenImageIO writer, and its PFM writer, like EXR, keeps the float values.
    let substitutions = [
        ("\"/models/Wan2.2-TI2V-5B-Diffusers\"", "\"\""),
        ("fr.inria.openfx.WriteOIIO", "fr.inria.openfx.WritePFM"),
        ("boat.####.exr", "boat.###.pfm"),
    ];
    let mut script = example.clone();
    for (from, to) in substitutions {
        assert_eq!(
            script.matches(from).count(),
            1,
            "the example has {from} once"
        );
        script = script.replace(from, to);
    }
    std::fs::write(dir.join("example.py"), script).unwrap();
    let run = natron_run(
        &dir,
        &shared_cache(),
        &["-t".as_ref(), "example.py".as_ref()],
    );
    assert!(
        !run.output.contains("Traceback"),
        "the example failed:\n{}",
        run.output
    );
    let frame = |t: usize| images::read_pfm(&dir.join(format!("renders/boat/boat.{t:03}.pfm")));
    // The example's settings: its prompt, seed 3, colour 1 (linear); the demo model's size.
    let cli = cli_clip(
        "a paper boat drifting on a calm lake, overcast light",
        3,
        &[],
    );
    for t in 1..=81 {
        let image = frame(t);
        assert_clip_size(&image, &format!("boat.{t:03}.pfm"));
        let f = (t - 1).min(FRAMES - 1);
        let d = max_difference(&image, |x, y, c| srgb_to_linear(cli.float(f, x, y)[c]));
        assert!(
            d <= 1e-3,
            "boat.{t:03}.pfm differs from linear t2v frame {f} by {d}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Farm renders

/// Saves a project holding `t2v` and a PFM writer `Write1` to `dir/name.ntp`.
fn save_project(dir: &Path, name: &str, t2v: Value) -> std::path::PathBuf {
    let project = dir.join(format!("{name}.ntp"));
    let job = json!({"mode": "graph", "format": [WIDTH, HEIGHT], "nodes": [t2v],
        "writers": [writer("Write1", "WritePFM", "t2v", &dir.join(format!("{name}_###.pfm")), 1, 17)],
        "save": project, "render": false});
    let (_, report) = drive(dir, &shared_cache(), job);
    assert_eq!(report["saved"], json!(true));
    project
}

fn farm_render(dir: &Path, cache: &Path, project: &Path) -> Run {
    let run = natron_run(
        dir,
        cache,
        &[
            "-w".as_ref(),
            "Write1".as_ref(),
            "1-17".as_ref(),
            project.as_os_str(),
        ],
    );
    assert!(
        run.exited(),
        "NatronRenderer -w did not exit on its own ({}):\n{}",
        run.status,
        run.output
    );
    run
}

#[test]
#[ignore = "needs NatronRenderer: NATRON_RENDERER=... NATRON_PLUGINS=... (see README)"]
fn a_saved_project_generates_on_demand_then_renders_from_the_clip_cache() {
    let dir = test_dir("farm");
    let cache = dir.join("clip-cache");
    let project = save_project(&dir, "farm", node("t2v", json!({"colour": "sRGB display"})));
    let cli = cli_clip(PROMPT, SEED, &[]);
    for (round, expected_generations) in [(1, 1), (2, 0)] {
        for t in 1..=FRAMES {
            let _ = std::fs::remove_file(frame_file(&dir, "farm_###.pfm", t as i64));
        }
        let run = farm_render(&dir, &cache, &project);
        assert_eq!(
            generations(&run.plugin_log),
            expected_generations,
            "render {round}: generations in our log:\n{}",
            run.plugin_log
        );
        if round == 2 {
            assert!(
                run.plugin_log.contains("from the cache"),
                "render 2 read the clip cache:\n{}",
                run.plugin_log
            );
        }
        for t in 1..=FRAMES {
            let image = images::read_pfm(&frame_file(&dir, "farm_###.pfm", t as i64));
            assert_clip_size(&image, "farm frame");
            let d = max_difference(&image, |x, y, c| cli.float(t - 1, x, y)[c]);
            assert!(d <= STEP, "render {round}, frame {t}: differs by {d}");
        }
    }
}

#[test]
#[ignore = "needs NatronRenderer: NATRON_RENDERER=... NATRON_PLUGINS=... (see README)"]
fn bad_input_fails_the_render_with_our_message_and_natron_survives() {
    let dir = test_dir("bad-input");
    let demo = demo_model();
    let cases = [
        (
            "empty",
            json!({"prompt": ""}),
            "the prompt is empty".to_string(),
        ),
        (
            "missing",
            json!({"model": "/nonexistent/wan2.2"}),
            "Model Path /nonexistent/wan2.2 is not a folder".to_string(),
        ),
        (
            // An explicit model path: the demo model's own frame count applies only to an
            // empty one.
            "frames80",
            json!({"model": demo, "frames": 80}),
            "frame count 80 is not of the form 4k+1; nearest valid: 77 or 81".to_string(),
        ),
    ];
    for (name, params, message) in cases {
        let project = save_project(&dir, name, node("t2v", params));
        let run = farm_render(&dir, &shared_cache(), &project);
        assert!(
            run.output.contains(&message),
            "{name}: Natron's log lacks {message:?}:\n{}",
            run.output
        );
        assert!(
            run.output.contains("Rendering Failed"),
            "{name}: Natron reports the failed render:\n{}",
            run.output
        );
        assert!(
            !frame_file(&dir, &format!("{name}_###.pfm"), 1).exists(),
            "{name}: no frame written"
        );
    }
}
