//! What the service takes and hands out is plain data: a request, a clip's frames, metadata and
//! latents, its progress and its errors all survive a JSON round trip unchanged (a later
//! service sends them over the network).

mod common;

use common::*;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;
use t2v_bridge::{Clip, ClipMetadata, Error, Frame, JobProgress, Latents, Precision, Request};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, value, "{json}");
}

#[test]
fn requests_clips_progress_and_errors_survive_json() {
    let service = service(no_cache());
    let request = request("plain data: a kite over a field");
    round_trip(&request);
    let job = service.submit(request.clone()).unwrap();
    let clip = job.wait().unwrap();
    round_trip::<JobProgress>(&job.progress());
    round_trip::<ClipMetadata>(&clip.metadata);
    round_trip::<Clip>(&clip);
    round_trip::<Vec<Frame>>(&clip.frames);
    round_trip::<Latents>(clip.latents.as_ref().unwrap());
    // The metadata names the precision the service decided for its device.
    assert_eq!(clip.metadata.dtype, Precision::F32.name());

    // A request read back from JSON is the same clip.
    let json = serde_json::to_string(&request).unwrap();
    let again: Request = serde_json::from_str(&json).unwrap();
    assert_eq!(service.key_for(&again).unwrap(), clip.key);

    let mut bad = request;
    bad.params.width = 33;
    let e = service.submit(bad).unwrap_err();
    round_trip::<Error>(&e);
    assert!(serde_json::to_string(&e)
        .unwrap()
        .contains(r#""kind":"bad_input""#));
}
