//! The host's property suite answers with the error codes OFX specifies.

use ofx_bindings::sys::*;
use ofx_test_host::props::{PropertySet, PROPERTY_SUITE};
use std::ffi::{c_char, c_int, c_void};
use std::ptr;

#[test]
fn property_suite_error_codes() {
    let set = PropertySet::new("test");
    set.define_int(c"Fixed2", &[1, 2]);
    set.define_string_var(c"Var", &[]);
    set.define_double(c"D", &[0.5]);
    let h = set.handle();
    let s = &PROPERTY_SUITE;
    // SAFETY: valid handle, names and out pointers, as a plugin would pass them.
    unsafe {
        let mut i: c_int = 0;
        let mut d = 0.0f64;
        let mut p: *mut c_char = ptr::null_mut();
        assert_eq!(
            s.propGetInt.unwrap()(h, c"Fixed2".as_ptr(), 1, &mut i),
            kOfxStatOK
        );
        assert_eq!(i, 2);
        assert_eq!(
            s.propGetInt.unwrap()(h, c"Nope".as_ptr(), 0, &mut i),
            kOfxStatErrUnknown
        );
        assert_eq!(
            s.propGetInt.unwrap()(h, c"D".as_ptr(), 0, &mut i),
            kOfxStatErrValue
        );
        assert_eq!(
            s.propGetInt.unwrap()(h, c"Fixed2".as_ptr(), 2, &mut i),
            kOfxStatErrBadIndex
        );
        assert_eq!(
            s.propGetInt.unwrap()(h, c"Fixed2".as_ptr(), -1, &mut i),
            kOfxStatErrBadIndex
        );
        assert_eq!(
            s.propSetInt.unwrap()(h, c"Fixed2".as_ptr(), 2, 9),
            kOfxStatErrBadIndex
        );
        assert_eq!(
            s.propSetDouble.unwrap()(h, c"Fixed2".as_ptr(), 0, 1.0),
            kOfxStatErrValue
        );
        // A handle of another kind, or NULL.
        let not_a_set = Box::new([0u64; 8]);
        assert_eq!(
            s.propGetDouble.unwrap()(
                not_a_set.as_ptr() as OfxPropertySetHandle,
                c"D".as_ptr(),
                0,
                &mut d
            ),
            kOfxStatErrBadHandle
        );
        assert_eq!(
            s.propGetDouble.unwrap()(ptr::null_mut(), c"D".as_ptr(), 0, &mut d),
            kOfxStatErrBadHandle
        );
        // Variable dimension grows one index at a time.
        assert_eq!(
            s.propSetString.unwrap()(h, c"Var".as_ptr(), 0, c"a".as_ptr()),
            kOfxStatOK
        );
        assert_eq!(
            s.propSetString.unwrap()(h, c"Var".as_ptr(), 1, c"b".as_ptr()),
            kOfxStatOK
        );
        assert_eq!(
            s.propSetString.unwrap()(h, c"Var".as_ptr(), 5, c"x".as_ptr()),
            kOfxStatErrBadIndex
        );
        assert_eq!(
            s.propGetDimension.unwrap()(h, c"Var".as_ptr(), &mut i),
            kOfxStatOK
        );
        assert_eq!(i, 2);
        assert_eq!(
            s.propGetString.unwrap()(h, c"Var".as_ptr(), 1, &mut p),
            kOfxStatOK
        );
        let first = p;
        // A string pointer stays valid after the value is replaced (plugins may hold it).
        assert_eq!(
            s.propSetString.unwrap()(h, c"Var".as_ptr(), 1, c"c".as_ptr()),
            kOfxStatOK
        );
        assert_eq!(std::ffi::CStr::from_ptr(first), c"b");
        // N getters and setters, and reset.
        let mut two = [0 as c_int; 2];
        assert_eq!(
            s.propSetIntN.unwrap()(h, c"Fixed2".as_ptr(), 2, [7, 8].as_ptr()),
            kOfxStatOK
        );
        assert_eq!(
            s.propGetIntN.unwrap()(h, c"Fixed2".as_ptr(), 2, two.as_mut_ptr()),
            kOfxStatOK
        );
        assert_eq!(two, [7, 8]);
        assert_eq!(
            s.propSetIntN.unwrap()(h, c"Fixed2".as_ptr(), 3, [1, 2, 3].as_ptr()),
            kOfxStatErrBadIndex
        );
        assert_eq!(s.propReset.unwrap()(h, c"Fixed2".as_ptr()), kOfxStatOK);
        assert_eq!(
            s.propGetIntN.unwrap()(h, c"Fixed2".as_ptr(), 2, two.as_mut_ptr()),
            kOfxStatOK
        );
        assert_eq!(two, [1, 2]);
        let mut ptr_value: *mut c_void = ptr::null_mut();
        assert_eq!(
            s.propGetPointer.unwrap()(h, c"D".as_ptr(), 0, &mut ptr_value),
            kOfxStatErrValue
        );
    }
}
