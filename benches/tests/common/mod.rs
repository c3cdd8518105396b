//! Checks every short run must pass: the counts add up.

use switchboard_bench::{BenchReport, Status};

pub fn assert_counts_add_up(report: &BenchReport, calls: u32) {
    assert_eq!(report.modes.len(), 1);
    let mode = &report.modes[0];
    assert_eq!(mode.levels.len(), 1);
    let l = &mode.levels[0];
    assert_eq!(l.calls, calls);
    let c = &l.setup.counts;
    let n = u64::from(calls);
    assert_eq!(c.started, n, "{c:?}");
    assert_eq!(
        c.a_up, n,
        "every calling leg answered: {c:?} {:?}",
        l.setup.problems
    );
    assert_eq!(c.b_up, n, "every called leg up: {c:?}");
    assert_eq!(c.failed, 0, "{:?}", l.setup.problems);
    assert_eq!(c.dropped, 0);
    assert_eq!(c.a_down, n, "every calling leg torn down: {c:?}");
    assert_eq!(c.b_down, n, "every called leg torn down: {c:?}");
    assert_eq!(c.teardown_failed, 0);
    for d in [&l.a_to_b, &l.b_to_a] {
        assert!(d.sent > 0, "{d:?}");
        assert_eq!(d.sent, d.received + d.lost, "sent = received + lost: {d:?}");
        assert_eq!(d.latency.count, d.received);
        assert_eq!(d.misrouted, 0);
        assert!(d.latency.p50_ms > 0.0 && d.latency.p50_ms <= d.latency.max_ms);
    }
    assert_eq!(l.tool.sent, l.a_to_b.sent + l.b_to_a.sent);
    assert_eq!(
        l.tool.due,
        l.tool.sent + l.tool.skipped + l.tool.send_errors
    );
    assert_eq!(l.setup.setup.count, n);
    // No timing assertions: a busy CI machine may legitimately fail the
    // latency rule, but never the accounting.
    let _ = matches!(
        l.verdict.status,
        Status::Pass | Status::Fail | Status::ToolLimited
    );
    let text = switchboard_bench::output::table(report);
    assert!(text.contains(&format!("{calls}/{calls}")), "{text}");
    let json = serde_json::to_value(report).expect("report serializes");
    assert!(json["modes"][0]["levels"][0]["a_to_b"]["latency"]["p99_ms"].is_number());
}
