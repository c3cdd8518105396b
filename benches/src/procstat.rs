//! CPU and memory of a process or thread, from /proc.

use serde::Serialize;

/// Cumulative CPU time (utime + stime) in clock ticks of `/proc/<path>/stat`.
fn cpu_ticks(stat_path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Resident set size in MiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_mib(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// What a process (or thread) is: `/proc/<pid>` or `/proc/self/task/<tid>`.
#[derive(Clone, Debug)]
pub struct Target {
    stat: String,
    pid: Option<u32>,
}

impl Target {
    pub fn process(pid: u32) -> Target {
        Target {
            stat: format!("/proc/{pid}/stat"),
            pid: Some(pid),
        }
    }

    pub fn own_thread(tid: i32) -> Target {
        Target {
            stat: format!("/proc/self/task/{tid}/stat"),
            pid: None,
        }
    }

    pub fn start(&self) -> Option<CpuMark> {
        Some(CpuMark {
            ticks: cpu_ticks(&self.stat)?,
            at: std::time::Instant::now(),
        })
    }

    /// CPU since `mark` as % of one core, and the RSS now.
    pub fn finish(&self, mark: &CpuMark) -> Option<ProcUsage> {
        let ticks = cpu_ticks(&self.stat)?;
        let wall = mark.at.elapsed().as_secs_f64();
        let cpu = (ticks.saturating_sub(mark.ticks)) as f64 / ticks_per_sec();
        Some(ProcUsage {
            cpu_pct: if wall > 0.0 { 100.0 * cpu / wall } else { 0.0 },
            rss_mib: self.pid.and_then(rss_mib),
        })
    }
}

#[derive(Clone, Debug)]
pub struct CpuMark {
    ticks: u64,
    at: std::time::Instant,
}

/// CPU over a window (% of one core: 200 = two cores busy) and RSS at its end.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProcUsage {
    pub cpu_pct: f64,
    pub rss_mib: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = Target::process(std::process::id());
        let mark = me.start().expect("own /proc stat");
        // Burn a little CPU, bounded.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let usage = me.finish(&mark).expect("own /proc stat");
        assert!(usage.cpu_pct >= 0.0);
        assert!(usage.rss_mib.unwrap_or(0.0) > 0.0);
        assert!(Target::process(u32::MAX).start().is_none());
    }
}
