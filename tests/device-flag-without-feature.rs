//! Built without the `device` feature, `--device` still parses (the README's commands are the
//! same for every build) and fails at once, saying how to rebuild, before any call.
#![cfg(not(feature = "device"))]

use std::process::Command;

#[test]
fn demo_and_serve_with_device_say_how_to_rebuild() {
    let exe = env!("CARGO_BIN_EXE_mediabot");
    let dir = std::env::temp_dir().join(format!("mediabot-nodevice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let runs = [
        vec!["demo", "--device"],
        vec!["demo", "--device", "usb", "--seconds", "1"],
        vec![
            "serve",
            "--app-id",
            "app",
            "--app-secret",
            "secret",
            "--tenant",
            "tenant",
            "--listen",
            "127.0.0.1:0",
            "--media-listen",
            "127.0.0.1:0",
            "--device",
        ],
    ];
    for args in runs {
        let out = Command::new(exe)
            .args(&args)
            .current_dir(&dir)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!(
            "{args:?}: {}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            stderr.contains("--features device"),
            "{args:?} says how to rebuild: {stderr}"
        );
        assert!(!stderr.contains("emulator https"), "{args:?} started calls");
        assert!(!stdout.contains("serving"), "{args:?} started serving");
    }
    assert!(!dir.join("recordings").exists(), "no call was recorded");
    let _ = std::fs::remove_dir_all(&dir);
}
