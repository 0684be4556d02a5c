//! A small hand-written SVG: the latency percentile distribution (HdrHistogram style,
//! log "nines" axis) and deliveries per second over time. Hand-written rather than
//! `plotters` so the tool needs no font stack and the files stay a few KB.

use std::fmt::Write;

use hdrhistogram::Histogram;

const W: f64 = 900.0;
const PANEL_H: f64 = 300.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the SVG document.
pub fn svg(title: &str, latency: &Histogram<u64>, timeline: &[(f64, u64)]) -> String {
    let mut out = String::new();
    let h = 2.0 * PANEL_H + 60.0;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    latency_panel(&mut out, latency, 40.0);
    throughput_panel(&mut out, timeline, 40.0 + PANEL_H + 20.0);
    out.push_str("</svg>\n");
    out
}

struct Frame {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
}

impl Frame {
    fn at(top: f64) -> Frame {
        Frame {
            x0: LEFT,
            y0: top + 25.0,
            w: W - LEFT - RIGHT,
            h: PANEL_H - 70.0,
        }
    }

    fn px(&self, fx: f64) -> f64 {
        self.x0 + fx.clamp(0.0, 1.0) * self.w
    }

    fn py(&self, fy: f64) -> f64 {
        self.y0 + self.h - fy.clamp(0.0, 1.0) * self.h
    }

    fn draw(&self, out: &mut String, title: &str, xlabel: &str, ylabel: &str) {
        let _ = writeln!(
            out,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
            self.x0, self.y0, self.w, self.h
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="13">{}</text>"#,
            self.x0 + self.w / 2.0,
            self.y0 - 8.0,
            esc(title)
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            self.x0 + self.w / 2.0,
            self.y0 + self.h + 34.0,
            esc(xlabel)
        );
        let _ = writeln!(
            out,
            r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
            self.y0 + self.h / 2.0,
            self.y0 + self.h / 2.0,
            esc(ylabel)
        );
    }

    fn ytick(&self, out: &mut String, fy: f64, label: &str) {
        let y = self.py(fy);
        let _ = writeln!(
            out,
            r##"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            self.x0,
            self.x0 + self.w,
            self.x0 - 5.0,
            y + 4.0,
            esc(label)
        );
    }

    fn xtick(&self, out: &mut String, fx: f64, label: &str) {
        let x = self.px(fx);
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#ddd"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
            self.y0,
            self.y0 + self.h,
            self.y0 + self.h + 16.0,
            esc(label)
        );
    }

    fn polyline(&self, out: &mut String, points: &[(f64, f64)], color: &str) {
        let mut pts = String::new();
        for (fx, fy) in points {
            let _ = write!(pts, "{:.1},{:.1} ", self.px(*fx), self.py(*fy));
        }
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            pts.trim_end()
        );
    }
}

/// Renders one panel of time series (x in seconds, y in `unit`), one colour each, e.g.
/// the resident memory of every node over a soak run.
pub fn series_svg(title: &str, unit: &str, series: &[(String, Vec<(f64, f64)>)]) -> String {
    const COLORS: [&str; 6] = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
    ];
    let mut out = String::new();
    let h = PANEL_H + 60.0;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let f = Frame::at(20.0);
    f.draw(&mut out, title, "seconds", unit);
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let max_x = nice_max(points.clone().map(|p| p.0).fold(0.0, f64::max));
    let max_y = nice_max(points.map(|p| p.1).fold(0.0, f64::max));
    for i in 0..=4 {
        let fr = i as f64 / 4.0;
        f.ytick(&mut out, fr, &format!("{:.0}", max_y * fr));
        f.xtick(&mut out, fr, &format!("{:.0}", max_x * fr));
    }
    for (n, (name, pts)) in series.iter().enumerate() {
        let color = COLORS[n % COLORS.len()];
        let scaled: Vec<(f64, f64)> = pts.iter().map(|(x, y)| (x / max_x, y / max_y)).collect();
        f.polyline(&mut out, &scaled, color);
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" fill="{color}">{}</text>"#,
            f.x0 + 10.0,
            f.y0 + 16.0 + 14.0 * n as f64,
            esc(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// "Nice" upper bound for an axis.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn latency_panel(out: &mut String, h: &Histogram<u64>, top: f64) {
    let f = Frame::at(top);
    f.draw(out, "Latency by percentile", "percentile", "latency (µs)");
    if h.is_empty() {
        return;
    }
    // x = log10(1 / (1 - q)) from 0 (p0) to 5 (p99.999).
    const MAX_NINES: f64 = 5.0;
    let max_us = nice_max(h.max() as f64 / 1e3);
    for i in 0..=4 {
        let v = max_us * i as f64 / 4.0;
        f.ytick(out, i as f64 / 4.0, &format!("{v:.0}"));
    }
    for (n, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
    {
        f.xtick(out, n as f64 / MAX_NINES, label);
    }
    let mut points = Vec::new();
    let steps = 200;
    for i in 0..=steps {
        let nines = MAX_NINES * i as f64 / steps as f64;
        let q = 1.0 - 10f64.powf(-nines);
        let v = h.value_at_quantile(q) as f64 / 1e3;
        points.push((nines / MAX_NINES, v / max_us));
    }
    f.polyline(out, &points, "#1f77b4");
}

fn throughput_panel(out: &mut String, timeline: &[(f64, u64)], top: f64) {
    let f = Frame::at(top);
    f.draw(
        out,
        "Deliveries per second (100 ms buckets)",
        "seconds since publishing started",
        "msgs/s",
    );
    if timeline.is_empty() {
        return;
    }
    let mut rates = Vec::with_capacity(timeline.len());
    let mut prev_t = 0.0;
    for &(t, n) in timeline {
        let dt = (t - prev_t).max(1e-3);
        rates.push((t, n as f64 / dt));
        prev_t = t;
    }
    let max_t = nice_max(prev_t);
    let max_r = nice_max(rates.iter().map(|r| r.1).fold(0.0, f64::max));
    for i in 0..=4 {
        let v = max_r * i as f64 / 4.0;
        f.ytick(out, i as f64 / 4.0, &crate::stats::commas(v));
        let t = max_t * i as f64 / 4.0;
        f.xtick(out, i as f64 / 4.0, &format!("{t:.1}"));
    }
    let points: Vec<(f64, f64)> = rates.iter().map(|(t, r)| (t / max_t, r / max_r)).collect();
    f.polyline(out, &points, "#d62728");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_panels() {
        let mut h = crate::stats::new_histogram();
        for v in 1..1000u64 {
            h.record(v * 1000).unwrap();
        }
        let s = svg("a <b>", &h, &[(0.1, 100), (0.2, 300), (0.3, 0)]);
        assert!(s.starts_with("<svg"));
        assert!(s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("a &lt;b&gt;"));
        assert_eq!(nice_max(730.0), 1000.0);
        assert_eq!(nice_max(0.0), 1.0);
        let series = vec![("node 0".to_owned(), vec![(0.0, 10.0), (60.0, 12.0)])];
        let rss = series_svg("RSS", "MiB", &series);
        assert_eq!(rss.matches("<polyline").count(), 1);
        assert!(rss.contains("node 0"));
    }
}
