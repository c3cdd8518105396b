//! When a level passes, and what capacity means.
//!
//! A level passes when every call was set up, loss is at most
//! `max_loss_pct`, p99 one-way latency is at most `max_p99_ms`, and the tool
//! really offered the load: at most `max_behind_pct` of the packets due were
//! sent late (more than `max_late_ms` behind schedule), skipped or failed to
//! send, and neither media thread of the tool was saturated. A level where
//! the tool could not keep up is *tool-limited*: it says nothing about the
//! engine. Capacity is the largest passing level below the first level that
//! did not pass.

use serde::Serialize;

/// The pass/fail thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Thresholds {
    pub max_loss_pct: f64,
    pub max_p99_ms: f64,
    /// A send later than this behind its due time counts against the tool.
    pub max_late_ms: f64,
    /// Share of due packets that may be late, skipped or unsent.
    pub max_behind_pct: f64,
    /// A tool media thread busier than this (% of a core) means tool-limited.
    pub max_thread_cpu_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_loss_pct: 0.1,
            max_p99_ms: 5.0,
            max_late_ms: 5.0,
            max_behind_pct: 0.1,
            max_thread_cpu_pct: 90.0,
        }
    }
}

/// What a level's verdict is decided on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LevelFacts {
    pub calls: u32,
    /// Calls with both legs up.
    pub calls_up: u64,
    pub received: u64,
    pub loss_pct: f64,
    pub p99_ms: f64,
    pub due: u64,
    /// Late, skipped or failed sends.
    pub behind: u64,
    pub sender_cpu_pct: Option<f64>,
    pub receiver_cpu_pct: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    ToolLimited,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::ToolLimited => "tool-limited",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub status: Status,
    pub reasons: Vec<String>,
}

pub fn judge(f: &LevelFacts, t: &Thresholds) -> Verdict {
    let mut tool = Vec::new();
    let behind_pct = if f.due > 0 {
        100.0 * f.behind as f64 / f.due as f64
    } else {
        0.0
    };
    if behind_pct > t.max_behind_pct {
        tool.push(format!(
            "tool behind schedule: {behind_pct:.2}% of due packets late >{} ms or unsent",
            t.max_late_ms
        ));
    }
    for (name, cpu) in [
        ("sender", f.sender_cpu_pct),
        ("receiver", f.receiver_cpu_pct),
    ] {
        if let Some(c) = cpu.filter(|&c| c > t.max_thread_cpu_pct) {
            tool.push(format!("tool {name} thread at {c:.0}% of a core"));
        }
    }
    if !tool.is_empty() {
        return Verdict {
            status: Status::ToolLimited,
            reasons: tool,
        };
    }
    let mut engine = Vec::new();
    if f.calls_up < u64::from(f.calls) {
        engine.push(format!("{}/{} calls set up", f.calls_up, f.calls));
    }
    if f.received == 0 {
        engine.push("no media received".to_string());
    }
    if f.loss_pct > t.max_loss_pct {
        engine.push(format!("loss {:.3}% > {}%", f.loss_pct, t.max_loss_pct));
    }
    if f.p99_ms > t.max_p99_ms {
        engine.push(format!("p99 {:.3} ms > {} ms", f.p99_ms, t.max_p99_ms));
    }
    Verdict {
        status: if engine.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        reasons: engine,
    }
}

/// What limited the capacity search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// A level failed on the engine's side.
    Engine,
    /// The tool could not offer the next level's load.
    Tool,
    /// Every level passed: capacity is at least the highest level.
    NotReached,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Capacity {
    /// Largest passing level below the first one that did not pass.
    pub calls: Option<u32>,
    pub bound: Bound,
    /// The level that ended the search, if one did.
    pub limit_level: Option<u32>,
}

impl Capacity {
    pub fn summary(&self) -> String {
        let Some(calls) = self.calls else {
            return match (self.bound, self.limit_level) {
                (Bound::Tool, Some(l)) => format!(
                    "undetermined: the tool could not offer the first level, {l} calls (tool-limited)"
                ),
                (_, Some(l)) => format!("below {l} calls: the first level failed"),
                _ => "no level ran".to_string(),
            };
        };
        let calls = format!("{calls} calls");
        match (self.bound, self.limit_level) {
            (Bound::Engine, Some(l)) => format!("{calls} (failed at {l})"),
            (Bound::Tool, Some(l)) => {
                format!("at least {calls}: the tool could not offer {l} (tool-limited, not engine capacity)")
            }
            _ => format!("at least {calls}: every level passed, step higher"),
        }
    }
}

/// Capacity from levels' (calls, status), in any order.
pub fn capacity(levels: &[(u32, Status)]) -> Capacity {
    let mut sorted = levels.to_vec();
    sorted.sort_by_key(|l| l.0);
    let mut best = None;
    for (calls, status) in sorted {
        match status {
            Status::Pass => best = Some(calls),
            Status::Fail => {
                return Capacity {
                    calls: best,
                    bound: Bound::Engine,
                    limit_level: Some(calls),
                }
            }
            Status::ToolLimited => {
                return Capacity {
                    calls: best,
                    bound: Bound::Tool,
                    limit_level: Some(calls),
                }
            }
        }
    }
    Capacity {
        calls: best,
        bound: Bound::NotReached,
        limit_level: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good(calls: u32) -> LevelFacts {
        LevelFacts {
            calls,
            calls_up: u64::from(calls),
            received: 1000,
            loss_pct: 0.0,
            p99_ms: 0.5,
            due: 1000,
            behind: 0,
            sender_cpu_pct: Some(20.0),
            receiver_cpu_pct: Some(20.0),
        }
    }

    #[test]
    fn passing_level() {
        let v = judge(&good(100), &Thresholds::default());
        assert_eq!(v.status, Status::Pass, "{:?}", v.reasons);
    }

    #[test]
    fn thresholds_are_inclusive() {
        let t = Thresholds::default();
        let mut f = good(10);
        f.loss_pct = 0.1;
        f.p99_ms = 5.0;
        f.behind = 1; // exactly 0.1% of 1000
        assert_eq!(judge(&f, &t).status, Status::Pass);
        f.loss_pct = 0.11;
        assert_eq!(judge(&f, &t).status, Status::Fail);
        f.loss_pct = 0.0;
        f.p99_ms = 5.01;
        assert_eq!(judge(&f, &t).status, Status::Fail);
    }

    #[test]
    fn engine_failures() {
        let t = Thresholds::default();
        let mut f = good(10);
        f.calls_up = 9;
        let v = judge(&f, &t);
        assert_eq!(v.status, Status::Fail);
        assert_eq!(v.reasons, vec!["9/10 calls set up".to_string()]);
        let mut f = good(10);
        f.received = 0;
        assert_eq!(judge(&f, &t).status, Status::Fail);
    }

    #[test]
    fn tool_limits_win_over_engine_failures() {
        let t = Thresholds::default();
        let mut f = good(10);
        f.behind = 2; // 0.2% of due
        f.loss_pct = 5.0; // would fail, but the tool did not offer the load
        let v = judge(&f, &t);
        assert_eq!(v.status, Status::ToolLimited);
        assert_eq!(v.reasons.len(), 1);
        let mut f = good(10);
        f.receiver_cpu_pct = Some(97.0);
        assert_eq!(judge(&f, &t).status, Status::ToolLimited);
    }

    #[test]
    fn capacity_rule() {
        use Status::*;
        let c = capacity(&[(100, Pass), (250, Pass), (500, Fail), (1000, Pass)]);
        assert_eq!(
            (c.calls, c.bound, c.limit_level),
            (Some(250), Bound::Engine, Some(500))
        );
        let c = capacity(&[(500, ToolLimited), (100, Pass)]);
        assert_eq!((c.calls, c.bound), (Some(100), Bound::Tool));
        assert!(c.summary().contains("tool-limited"));
        let c = capacity(&[(100, Pass), (200, Pass)]);
        assert_eq!((c.calls, c.bound), (Some(200), Bound::NotReached));
        let c = capacity(&[(100, Fail)]);
        assert_eq!((c.calls, c.bound), (None, Bound::Engine));
        assert_eq!(capacity(&[]).calls, None);
    }
}
