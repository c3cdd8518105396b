//! What people read: the live progress line, the summary table, the JSON
//! file and the latency-vs-load plot.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::media::{Clock, Live};
use crate::signal::{CounterValues, Shared};
use crate::{BenchReport, LevelReport, Mode};

/// The once-a-second status line on stderr.
pub struct Progress {
    enabled: bool,
    tty: bool,
    mode: Mode,
    calls: u32,
    clock: Clock,
    live: Arc<Live>,
    shared: Arc<Shared>,
    base: CounterValues,
    last_ns: u64,
    last: (u64, u64, i64, u64),
    hold: Option<(u64, u64)>,
    printed: bool,
}

impl Progress {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        enabled: bool,
        tty: bool,
        mode: Mode,
        calls: u32,
        clock: Clock,
        live: Arc<Live>,
        shared: Arc<Shared>,
        base: CounterValues,
    ) -> Progress {
        let now = clock.now_ns();
        let last = Self::read(&live);
        Progress {
            enabled,
            tty,
            mode,
            calls,
            clock,
            live,
            shared,
            base,
            last_ns: now,
            last,
            hold: None,
            printed: false,
        }
    }

    fn read(live: &Live) -> (u64, u64, i64, u64) {
        (
            live.sent.load(Ordering::Relaxed),
            live.received.load(Ordering::Relaxed),
            live.gaps.load(Ordering::Relaxed),
            live.late.load(Ordering::Relaxed),
        )
    }

    pub fn set_hold(&mut self, start: u64, end: u64) {
        self.hold = Some((start, end));
    }

    /// Prints a line if a second has passed since the last one.
    pub fn tick(&mut self, phase: &str) {
        if !self.enabled {
            return;
        }
        let now = self.clock.now_ns();
        let dt = now.saturating_sub(self.last_ns);
        if dt < 1_000_000_000 {
            return;
        }
        let cur = Self::read(&self.live);
        let secs = dt as f64 / 1e9;
        let tx = (cur.0 - self.last.0) as f64 / secs;
        let rx_n = cur.1 - self.last.1;
        let rx = rx_n as f64 / secs;
        let gaps = (cur.2 - self.last.2).max(0) as f64;
        let loss = if rx_n as f64 + gaps > 0.0 {
            100.0 * gaps / (rx_n as f64 + gaps)
        } else {
            0.0
        };
        let late = cur.3 - self.last.3;
        self.last = cur;
        self.last_ns = now;
        let v = self.shared.counters.values().since(&self.base);
        let up = v.a_up.saturating_sub(v.a_down + v.dropped);
        let phase = match (phase, self.hold) {
            ("hold", Some((s, e))) if now >= s => format!(
                "hold {:>3.0}/{:.0}s",
                (now - s) as f64 / 1e9,
                (e - s) as f64 / 1e9
            ),
            (p, _) => format!("{p:<11}"),
        };
        let p99 = self.live.p99_ns.load(Ordering::Relaxed) as f64 / 1e6;
        let line = format!(
            "[{:<11} {:>5} calls] {phase} | up {up:>5}/{} fail {} | tx {} rx {} pkt/s | p99 {p99:.3} ms | loss {loss:.2}% | late sends {late}",
            self.mode.label(),
            self.calls,
            self.calls,
            v.failed,
            si(tx),
            si(rx),
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        self.printed = true;
    }

    /// Ends a tty line.
    pub fn finish(&mut self) {
        if self.enabled && self.tty && self.printed {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

fn si(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1}k", x / 1000.0)
    } else {
        format!("{x:.0}")
    }
}

/// One line per finished level (stderr, as the run goes).
pub fn level_line(mode: Mode, l: &LevelReport) -> String {
    format!(
        "{} {} calls: p50 {:.3} / p99 {:.3} / p99.9 {:.3} / max {:.3} ms, loss {:.3}%, {}{}",
        mode.label(),
        l.calls,
        l.latency.p50_ms,
        l.latency.p99_ms,
        l.latency.p999_ms,
        l.latency.max_ms,
        l.loss_pct,
        l.verdict.status.label(),
        if l.verdict.reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", l.verdict.reasons.join("; "))
        }
    )
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.prec$}"))
}

/// The summary: one row per level per mode, then capacity and notes.
pub fn table(r: &BenchReport) -> String {
    let c = &r.config;
    let t = &c.thresholds;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} · run {:04x} · {:.0} s measured per level · pass: loss ≤ {}%, p99 ≤ {} ms, tool behind schedule (> {} ms late or unsent) ≤ {}%",
        r.tool, r.run_id, c.hold_secs, t.max_loss_pct, t.max_p99_ms, t.max_late_ms, t.max_behind_pct
    );
    let _ = writeln!(
        out,
        "latency: one-way, tool send → engine → tool receive, both directions, ms"
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<11} {:>6} {:>11} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>7} {:>7} {:>7} {:>6} {:>6}  verdict",
        "mode", "calls", "up", "pkt/s", "p50", "p90", "p99", "p99.9", "max", "loss%", "reord", "jit", "setup99", "engCPU%", "engMiB", "tool%", "behnd%"
    );
    for m in &r.modes {
        for l in &m.levels {
            let up = l.setup.counts.a_up.min(l.setup.counts.b_up);
            let _ = writeln!(
                out,
                "{:<11} {:>6} {:>11} {:>7.0} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>6} {:>6.3} {:>7.1} {:>7} {:>7} {:>6} {:>6.2}  {}",
                m.mode.label(),
                l.calls,
                format!("{up}/{}", l.calls),
                l.packets_per_sec,
                l.latency.p50_ms,
                l.latency.p90_ms,
                l.latency.p99_ms,
                l.latency.p999_ms,
                l.latency.max_ms,
                l.loss_pct,
                l.a_to_b.reordered + l.b_to_a.reordered,
                l.a_to_b.jitter_ms_mean.max(l.b_to_a.jitter_ms_mean),
                l.setup.setup.p99_ms,
                opt(l.engine.as_ref().map(|u| u.cpu_pct), 1),
                opt(l.engine.as_ref().and_then(|u| u.rss_mib), 1),
                opt(l.tool.process.as_ref().map(|u| u.cpu_pct), 0),
                l.tool.behind_pct,
                l.verdict.status.label(),
            );
        }
    }
    let _ = writeln!(out);
    for m in &r.modes {
        let what = if m.mode == Mode::SelfTest {
            "the tool alone drives"
        } else {
            "capacity"
        };
        let _ = writeln!(
            out,
            "{:<11} {what}: {}",
            m.mode.label(),
            m.capacity.summary()
        );
    }
    let mut notes = String::new();
    for m in &r.modes {
        for l in &m.levels {
            for reason in &l.verdict.reasons {
                let _ = writeln!(notes, "  {} {}: {reason}", m.mode.label(), l.calls);
            }
            for (p, n) in &l.setup.problems {
                let _ = writeln!(notes, "  {} {}: {p} ×{n}", m.mode.label(), l.calls);
            }
            for (d, name) in [(&l.a_to_b, "A->B"), (&l.b_to_a, "B->A")] {
                if d.misrouted > 0 || d.duplicates > 0 {
                    let _ = writeln!(
                        notes,
                        "  {} {} {name}: {} misrouted, {} duplicates",
                        m.mode.label(),
                        l.calls,
                        d.misrouted,
                        d.duplicates
                    );
                }
            }
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "\nnotes:\n{notes}");
    }
    out
}

/// The whole report as pretty JSON.
pub fn write_json(r: &BenchReport, path: &Path) -> std::io::Result<()> {
    let f = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(f, r).map_err(std::io::Error::other)
}

/// Latency vs load: p50, p99 and p99.9 against calls, one colour per mode.
pub fn write_plot(r: &BenchReport, path: &Path) -> Result<(), String> {
    use plotters::prelude::*;

    // (legend, mode index, line width, points)
    type Series = (String, usize, u32, Vec<(f64, f64)>);
    let series: Vec<Series> = r
        .modes
        .iter()
        .enumerate()
        .flat_map(|(mi, m)| {
            [("p50", 1u32), ("p99", 2), ("p99.9", 3)]
                .into_iter()
                .map(move |(name, width)| {
                    let pts = m
                        .levels
                        .iter()
                        .filter(|l| l.latency.count > 0)
                        .map(|l| {
                            let v = match name {
                                "p50" => l.latency.p50_ms,
                                "p99" => l.latency.p99_ms,
                                _ => l.latency.p999_ms,
                            };
                            (f64::from(l.calls), v.max(0.001))
                        })
                        .collect();
                    (format!("{} {name}", m.mode.label()), mi, width, pts)
                })
        })
        .collect();
    let xs = series.iter().flat_map(|s| s.3.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.3.iter().map(|p| p.1));
    let x_max = xs.fold(1.0f64, f64::max) * 1.05;
    let y_max = ys.clone().fold(0.01f64, f64::max) * 2.0;
    let y_min = ys.fold(f64::MAX, f64::min).min(y_max / 10.0) / 2.0;
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("one-way latency vs load — run {:04x}", r.run_id),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("concurrent calls")
        .y_desc("latency, ms (log)")
        .draw()
        .map_err(e)?;
    let palette = [BLUE, RED, GREEN, MAGENTA];
    for (label, mi, width, pts) in series {
        let colour = palette[mi % palette.len()];
        let style = colour
            .mix(0.35 + 0.2 * f64::from(width))
            .stroke_width(width);
        chart
            .draw_series(LineSeries::new(pts.clone(), style))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        chart
            .draw_series(
                pts.iter()
                    .map(|&p| Circle::new(p, 2 + width, colour.filled())),
            )
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}
