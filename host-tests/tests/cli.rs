//! End-to-end: the `ofx-render` binary renders the fixture to PNG files.

use std::process::Command;

#[test]
fn ofx_render_writes_pngs() {
    let bundle = ofx_test_host::ramp_generator_bundle().unwrap();
    let dir = std::env::temp_dir().join(format!("ofx-render-test-{}", std::process::id()));
    // The output folder doesn't exist yet: ofx-render creates it.
    let pattern = dir.join("out.%04d.png");
    let out = Command::new(env!("CARGO_BIN_EXE_ofx-render"))
        .arg("--bundle")
        .arg(&bundle)
        .args([
            "--frames",
            "2-3",
            "--depth",
            "short",
            "--size",
            "8x4",
            "--set",
            "seed=5",
            "--set",
            "label=abcd",
            "--background",
        ])
        .arg("--output")
        .arg(&pattern)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("status: rendered 2 frame(s), last 3"),
        "{stderr}"
    );
    assert!(stderr.contains("progress:"), "{stderr}");
    for frame in [2, 3] {
        let png = image::open(dir.join(format!("out.{frame:04}.png")))
            .unwrap()
            .to_rgba8();
        assert_eq!(png.dimensions(), (8, 4));
        // Top-left in the file is the top row (y = 3 of 4): g = 1; b = (frame + 5) % 10 / 10.
        let p = png.get_pixel(0, 0).0;
        assert_eq!(p[1], 255);
        assert_eq!(
            p[2],
            (((frame + 5) % 10) as f32 / 10.0 * 255.0).round() as u8
        );
        assert_eq!(p[3], 255); // alpha = (4 chars % 5) / 4 = 1
    }
    std::fs::remove_dir_all(&dir).ok();
}
