//! Live previews through the service, on the tiny model: they come through the job's frame
//! stream marked as previews, before the decoded frames, which then replace them; they change
//! neither the clip, nor its key, nor what the cache holds; a submitter that did not ask for
//! them never gets one.

mod common;

use common::*;
use std::sync::Arc;
use t2v_bridge::{FrameKind, JobStage, PreviewCadence};

#[test]
fn previews_arrive_marked_before_the_decoded_frames_and_are_never_cached() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(with_cache(dir.path()));
    let mut asked = request("previews: a red circle");
    asked.params.steps = 4;
    asked.preview = Some(PreviewCadence::Every(1));
    let plain = {
        let mut r = asked.clone();
        r.preview = None;
        r
    };
    assert_eq!(
        service.key_for(&asked).unwrap(),
        service.key_for(&plain).unwrap(),
        "previews are not part of the clip"
    );

    // Hold the worker when step 2 is reported: the preview of step 1 exists, nothing decoded.
    let (gate, observer) = Gate::new(|p| matches!(p.stage, JobStage::Denoising { step: 2, .. }));
    let handle = service
        .submit_observed(asked.clone(), Some(observer))
        .unwrap();
    gate.wait_reached();
    let preview = handle.preview().expect("a preview after step 1");
    assert_eq!((preview.step, preview.steps), (1, 4));
    assert_eq!(preview.frames.len(), 9);
    assert_eq!(
        (preview.frames[0].width(), preview.frames[0].height()),
        (64, 64)
    );
    let streamed = handle.latest_frame(4).expect("frame 4 is in the stream");
    assert_eq!(streamed.kind, FrameKind::Preview { step: 1, steps: 4 });
    assert!(streamed.is_preview());
    assert_eq!(streamed.frame, preview.frames[4]);
    assert!(handle.frame(4).is_none(), "frame() never returns a preview");
    assert!(handle.frames_so_far().is_empty());
    // A plain submitter of the same clip joins the job and sees no preview.
    let plain_handle = service.submit(plain.clone()).unwrap();
    assert_eq!(plain_handle.key(), handle.key());
    assert!(plain_handle.frame(0).is_none());
    gate.open();

    let clip = handle.wait().unwrap();
    assert!(
        handle.preview().is_none(),
        "the decoded frames replace the preview"
    );
    for i in 0..9 {
        let last = handle.latest_frame(i).unwrap();
        assert_eq!(last.kind, FrameKind::Decoded);
        assert_eq!(last.frame, clip.frames[i]);
    }
    assert_ne!(
        clip.frames[0], preview.frames[0],
        "a preview is not the clip"
    );
    // The clip is the one made without previews, and the cache holds it, not a preview.
    assert_frames_close(&clip.frames, &reference_frames(&plain));
    assert_eq!(plain_handle.wait().unwrap().frames, clip.frames);
    let again = service.submit(plain).unwrap().wait().unwrap();
    assert!(again.from_cache);
    assert_eq!(again.frames, clip.frames);
}

#[test]
fn automatic_previews_start_after_the_first_step() {
    let service = service(no_cache());
    let mut r = request("previews: auto");
    r.params.steps = 3;
    r.preview = Some(PreviewCadence::Auto);
    let (gate, observer) = Gate::new(|p| matches!(p.stage, JobStage::Denoising { step: 2, .. }));
    let handle = Arc::new(service.submit_observed(r, Some(observer)).unwrap());
    gate.wait_reached();
    assert_eq!(handle.preview().map(|p| p.step), Some(1));
    gate.open();
    handle.wait().unwrap();
}
