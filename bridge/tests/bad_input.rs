//! Bad requests fail with a message that says what to change, and never panic or reach the
//! worker.

#![allow(clippy::type_complexity)]

mod common;

use common::*;
use t2v_bridge::{ErrorKind, ModelSpec};

fn submit_error(service: &t2v_bridge::Service, r: t2v_bridge::Request) -> t2v_bridge::Error {
    service
        .submit(r)
        .expect_err("a bad request is refused at submission")
}

#[test]
fn each_bad_request_says_what_to_change() {
    let service = service(no_cache());
    let cases: Vec<(&str, Box<dyn Fn(&mut t2v_bridge::Request)>, &str)> = vec![
        (
            "empty prompt",
            Box::new(|r| r.params.prompt = "  ".into()),
            "prompt is empty",
        ),
        (
            "bad width",
            Box::new(|r| r.params.width = 70),
            "width 70 is not a multiple of 32; nearest valid: 64 or 96",
        ),
        (
            "bad frames",
            Box::new(|r| r.params.frames = 8),
            "frame count 8 is not of the form 4k+1; nearest valid: 5 or 9",
        ),
        (
            "no steps",
            Box::new(|r| r.params.steps = 0),
            "steps 0 is out of range",
        ),
        (
            "bad guidance",
            Box::new(|r| r.params.guidance = f64::NAN),
            "guidance NaN is out of range",
        ),
        (
            "missing model",
            Box::new(|r| r.model = ModelSpec::folder("/no/such/model")),
            "/no/such/model: does not exist",
        ),
        (
            "no model",
            Box::new(|r| r.model = ModelSpec::default()),
            "no model given",
        ),
        (
            "folder without a model",
            Box::new(|r| r.model = ModelSpec::folder(fixtures().join("parity"))),
            "no transformer checkpoint found",
        ),
    ];
    for (name, change, expected) in cases {
        let mut r = request("bad input");
        change(&mut r);
        let e = submit_error(&service, r);
        assert_eq!(e.kind, ErrorKind::BadInput, "{name}: {e}");
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.message.contains(expected),
            "{name}: `{}` lacks `{expected}`",
            e.message
        );
    }
    assert_eq!(service.stats().jobs_submitted, 0);
}

#[test]
fn starting_latents_of_the_wrong_shape_fail_the_job_not_the_worker() {
    let service = service(no_cache());
    let mut r = request("wrong latents");
    r.init_latents = Some(t2v_bridge::Latents::new(vec![1, 48, 1, 4, 4], vec![0.0; 768]).unwrap());
    let e = service.submit(r).unwrap().wait().unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(e.message.contains("[1, 48, 3, 4, 4]"), "{}", e.message);
    assert!(service.submit(request("fine")).unwrap().wait().is_ok());
}

#[test]
fn an_unusable_cache_folder_is_reported() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let e = t2v_bridge::Service::new(with_cache(&file.path().join("sub")))
        .err()
        .expect("a file is not a folder");
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(e.message.contains("clip cache folder"), "{}", e.message);
}
