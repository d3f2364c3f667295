//! The C ABI's answers to misuse, called as C calls it: statuses and messages,
//! never a crash.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::ptr;

use mayday::*;

fn last_error() -> String {
    // SAFETY: mayday_last_error returns a live NUL-terminated string.
    unsafe { CStr::from_ptr(mayday_last_error()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn misuse_is_answered_with_a_status_and_a_message() {
    // SAFETY: every pointer below is NULL, a live builder/client or a C string.
    unsafe {
        assert_eq!(
            mayday_builder_product(ptr::null_mut(), c"x".as_ptr()),
            MaydayStatus::InvalidArgument
        );
        assert!(last_error().contains("builder is NULL"), "{}", last_error());

        let b = mayday_builder_new();
        assert!(!b.is_null());
        assert_eq!(
            mayday_builder_product(b, ptr::null()),
            MaydayStatus::InvalidArgument
        );
        let not_utf8 = CString::new(vec![0xff, 0xfe]).unwrap();
        assert_eq!(
            mayday_builder_version(b, not_utf8.as_ptr()),
            MaydayStatus::InvalidArgument
        );
        assert!(last_error().contains("not UTF-8"), "{}", last_error());
        assert_eq!(mayday_builder_consent(b, 42), MaydayStatus::InvalidArgument);
        assert_eq!(
            mayday_builder_consent(b, MAYDAY_CONSENT_NEVER),
            MaydayStatus::Ok
        );
        assert_eq!(last_error(), "");
        // No product or version: the client cannot be made; the builder is taken.
        assert!(mayday_open(b).is_null());
        assert!(last_error().contains("product"), "{}", last_error());

        let dir = tempfile::tempdir().unwrap();
        let dir_c = CString::new(dir.path().to_str().unwrap()).unwrap();
        let b = mayday_builder_new();
        assert_eq!(mayday_builder_product(b, c"app".as_ptr()), MaydayStatus::Ok);
        assert_eq!(mayday_builder_version(b, c"1.0".as_ptr()), MaydayStatus::Ok);
        assert_eq!(mayday_builder_data_dir(b, dir_c.as_ptr()), MaydayStatus::Ok);
        let client = mayday_open(b);
        assert!(!client.is_null(), "{}", last_error());
        // Run-time annotations need crash monitoring installed.
        assert_eq!(
            mayday_set_annotation(client, c"k".as_ptr(), c"v".as_ptr()),
            MaydayStatus::Config
        );
        assert_eq!(
            mayday_forget(client, c"bp-unknown".as_ptr()),
            MaydayStatus::UnknownReport
        );
        let mut summary = std::mem::MaybeUninit::<MaydaySendSummary>::uninit();
        assert_eq!(
            mayday_send_pending(client, None, ptr::null_mut(), summary.as_mut_ptr()),
            MaydayStatus::Ok
        );
        let summary = summary.assume_init();
        assert_eq!((summary.sent, summary.still_pending), (0, 0));
        assert_eq!(summary.waiting, MaydayWaiting::None);
        assert_eq!(
            mayday_sent_reports(client, None, ptr::null_mut()),
            MaydayStatus::InvalidArgument
        );
        mayday_shutdown(client);
        mayday_shutdown(ptr::null_mut());
        mayday_builder_free(ptr::null_mut());
    }
}
