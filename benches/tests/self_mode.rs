//! A short `--mode self` run: the UAC calls the built-in UAS directly.

mod common;

use switchboard_bench::{run, BenchConfig, Mode};

#[test]
fn self_mode_counts_add_up() {
    let report = run(BenchConfig {
        mode: Mode::SelfTest,
        uas_listen: "127.0.0.1:0".parse().unwrap(),
        levels: vec![5],
        cps: 20.0,
        hold_secs: 2.0,
        give_up_secs: 4.0,
        ..BenchConfig::default()
    })
    .expect("self run");
    common::assert_counts_add_up(&report, 5);
    let dir = std::env::temp_dir().join(format!("sb-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("plot.svg");
    switchboard_bench::output::write_plot(&report, &svg).expect("plot");
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    let json = dir.join("report.json");
    switchboard_bench::output::write_json(&report, &json).expect("json");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rejects_bad_config() {
    let bad = run(BenchConfig {
        levels: vec![],
        ..BenchConfig::default()
    });
    assert!(bad.is_err());
}
