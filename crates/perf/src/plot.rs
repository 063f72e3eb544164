//! `warren-perf plot DIR`: charts from a `compare` results directory, each as PNG and SVG.
//!
//! - `seed-<size>`: the seed's plots, one per message size: throughput per broker
//!   (median bar, min–max whisker), for a classic queue and, when the results have it,
//!   a stream (`seed-stream-<size>`, deliveries per second: every consumer reads every
//!   message).
//! - `targets`: the subject's ratio against the baseline per target scenario, with the
//!   target marked.
//! - `latency`: end-to-end latency percentiles per broker at a fixed rate (log scale).
//! - `scaling`: throughput against producers = consumers per broker.
//! - `cpu`: broker CPU µs per message per throughput scenario (log scale).
//!
//! A chart is drawn only when its scenarios are in the results. Text needs a TrueType
//! font even in SVG (labels are measured to lay the chart out); it is loaded at run time
//! from `--font`, `WARREN_PERF_FONT`, or the usual system places (Debian:
//! `fonts-dejavu-core`), so building needs no font libraries.

use std::path::{Path, PathBuf};

use clap::Args;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::compare::{verdict, Results, SummaryRow};

#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// A directory `warren-perf compare` wrote (reads its results.json; charts go next
    /// to it).
    pub dir: PathBuf,
    /// TrueType font for the labels [default: $WARREN_PERF_FONT, then DejaVu Sans or
    /// Liberation Sans from /usr/share/fonts].
    #[arg(long)]
    pub font: Option<PathBuf>,
}

const W: u32 = 960;
const H: u32 = 560;
const FONT: &str = "sans-serif";

type DrawResult = Result<(), String>;

pub fn plot(args: PlotArgs) -> Result<i32, String> {
    let path = args.dir.join("results.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let r: Results = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a compare result: {e}", path.display()))?;
    load_font(args.font.as_deref())?;
    let mut written: Vec<String> = Vec::new();
    // The same drawing code for both backends: the macro expands it once per type.
    macro_rules! emit {
        ($name:expr, $root:ident => $draw:expr) => {{
            let name: &str = $name;
            let svg = args.dir.join(format!("{name}.svg"));
            let png = args.dir.join(format!("{name}.png"));
            {
                let $root = SVGBackend::new(&svg, (W, H)).into_drawing_area();
                $root.fill(&WHITE).map_err(err)?;
                $draw?;
                $root.present().map_err(err)?;
            }
            {
                let $root = BitMapBackend::new(&png, (W, H)).into_drawing_area();
                $root.fill(&WHITE).map_err(err)?;
                $draw?;
                $root.present().map_err(err)?;
            }
            written.push(name.to_string());
        }};
    }
    let mut sizes: Vec<f64> = r
        .scenarios
        .iter()
        .filter(|s| s.group == "seed" || s.group == "seed-stream")
        .map(|s| s.x)
        .collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    for size in &sizes {
        emit!(&format!("seed-{size}"), root => seed_chart(&r, *size, &root));
    }
    if r.subject != r.baseline && r.scenarios.iter().any(|s| s.target_ratio.is_some()) {
        emit!("targets", root => targets_chart(&r, &root));
    }
    if r.scenarios.iter().any(|s| s.group == "latency") {
        emit!("latency", root => latency_chart(&r, &root));
    }
    if r.scenarios.iter().filter(|s| s.group == "scaling").count() > 1 {
        emit!("scaling", root => scaling_chart(&r, &root));
    }
    if r.scenarios.iter().any(|s| s.metric == "msg/s") {
        emit!("cpu", root => cpu_chart(&r, &root));
    }
    eprintln!(
        "warren-perf plot: {} (.png and .svg) in {}",
        written.join(", "),
        args.dir.display()
    );
    Ok(0)
}

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("drawing failed: {e}")
}

/// Finds a TTF and registers it as the family every chart uses.
fn load_font(explicit: Option<&Path>) -> Result<(), String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = explicit {
        candidates.push(p.to_path_buf());
    } else {
        if let Some(p) = std::env::var_os("WARREN_PERF_FONT") {
            candidates.push(p.into());
        }
        for p in [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
        ] {
            candidates.push(p.into());
        }
    }
    for p in &candidates {
        if let Ok(bytes) = std::fs::read(p) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            for style in [FontStyle::Normal, FontStyle::Bold] {
                plotters::style::register_font(FONT, style, bytes)
                    .map_err(|_| format!("{}: not a usable TrueType font", p.display()))?;
            }
            return Ok(());
        }
    }
    Err(format!(
        "no TrueType font for the chart labels (looked for {}); install one (Debian: \
         apt-get install fonts-dejavu-core) or give --font FILE.ttf",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn broker_color(r: &Results, broker: &str) -> RGBColor {
    const OTHERS: [RGBColor; 4] = [
        RGBColor(49, 110, 176),
        RGBColor(90, 160, 90),
        RGBColor(140, 100, 170),
        RGBColor(120, 120, 120),
    ];
    if broker == r.subject {
        return RGBColor(224, 102, 26);
    }
    let i = r
        .brokers
        .iter()
        .filter(|b| b.name != r.subject)
        .position(|b| b.name == broker)
        .unwrap_or(0);
    OTHERS[i % OTHERS.len()]
}

fn row<'a>(r: &'a Results, scenario: &str, broker: &str) -> Option<&'a SummaryRow> {
    r.summary
        .iter()
        .find(|s| s.scenario == scenario && s.broker == broker && s.runs > s.failed)
}

fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn caption(r: &Results, title: &str) -> String {
    let m = |k: &str| r.meta.get(k).cloned().unwrap_or_default();
    format!(
        "{title}  ({} cores, {})",
        m("cores"),
        m("date").get(..10).unwrap_or("")
    )
}

/// A broker's bars: its name, colour and, per category, (median, min, max).
type Series = (String, RGBColor, Vec<Option<(f64, f64, f64)>>);

/// Grouped bars: one group per category, one bar per series, value labels on top,
/// optional whiskers (min, max) and target markers per category.
struct Bars {
    title: String,
    y_desc: String,
    categories: Vec<String>,
    /// (series name, colour, per category: (median, min, max)).
    series: Vec<Series>,
    log_y: bool,
    /// Per category, a horizontal marker (a target) and its label.
    markers: Vec<Option<(f64, String)>>,
    label: fn(f64) -> String,
}

fn draw_bars<DB: DrawingBackend>(b: &Bars, root: &DrawingArea<DB, Shift>) -> DrawResult {
    let n = b.categories.len().max(1) as f64;
    let all: Vec<f64> = b
        .series
        .iter()
        .flat_map(|s| s.2.iter().flatten().map(|v| v.2.max(v.0)))
        .chain(b.markers.iter().flatten().map(|m| m.0))
        .filter(|v| *v > 0.0)
        .collect();
    let hi = all.iter().copied().fold(0.0, f64::max).max(1e-9);
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).min(hi);
    let title_style = (FONT, 20).into_font();
    let root = root.margin(10, 10, 10, 10);
    let (top, body) = root.split_vertically(40);
    top.draw(&Text::new(
        b.title.clone(),
        (0, 8),
        title_style.color(&BLACK),
    ))
    .map_err(err)?;
    let (chart_area, legend) = body.split_horizontally(W - 200);
    let nseries = b.series.len().max(1) as f64;
    let width = 0.8 / nseries;
    let label_style = (FONT, 14).into_font().color(&BLACK);
    let centers: Vec<f64> = (0..b.categories.len()).map(|i| i as f64 + 0.5).collect();

    macro_rules! body {
        ($chart:ident, $floor:expr) => {{
            $chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .y_desc(b.y_desc.as_str())
                .y_label_formatter(&|v| short(*v))
                .label_style((FONT, 14))
                .axis_desc_style((FONT, 15))
                .draw()
                .map_err(err)?;
            for (j, (_, color, values)) in b.series.iter().enumerate() {
                for (i, v) in values.iter().enumerate() {
                    let Some((med, min, max)) = *v else { continue };
                    let x0 = i as f64 + 0.1 + j as f64 * width;
                    let x1 = x0 + width * 0.92;
                    $chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x0, $floor), (x1, med.max($floor))],
                            color.filled(),
                        )))
                        .map_err(err)?;
                    let xc = (x0 + x1) / 2.0;
                    if max > min {
                        let wh = BLACK.stroke_width(1);
                        let cap = width * 0.15;
                        $chart
                            .draw_series([
                                PathElement::new(vec![(xc, min.max($floor)), (xc, max)], wh),
                                PathElement::new(vec![(xc - cap, max), (xc + cap, max)], wh),
                                PathElement::new(
                                    vec![(xc - cap, min.max($floor)), (xc + cap, min.max($floor))],
                                    wh,
                                ),
                            ])
                            .map_err(err)?;
                    }
                    let top = max.max(med);
                    $chart
                        .draw_series(std::iter::once(
                            EmptyElement::at((xc, top))
                                + Text::new(
                                    (b.label)(med),
                                    (0, -6),
                                    label_style.pos(Pos::new(HPos::Center, VPos::Bottom)),
                                ),
                        ))
                        .map_err(err)?;
                }
            }
            for (i, m) in b.markers.iter().enumerate() {
                let Some((y, text)) = m else { continue };
                let red = RGBColor(200, 30, 30);
                $chart
                    .draw_series([PathElement::new(
                        vec![(i as f64 + 0.05, *y), (i as f64 + 0.95, *y)],
                        red.stroke_width(2),
                    )])
                    .map_err(err)?;
                $chart
                    .draw_series(std::iter::once(
                        EmptyElement::at((i as f64 + 0.95, *y))
                            + Text::new(
                                text.clone(),
                                (0, 3),
                                (FONT, 13)
                                    .into_font()
                                    .color(&red)
                                    .pos(Pos::new(HPos::Right, VPos::Top)),
                            ),
                    ))
                    .map_err(err)?;
            }
            // Many categories: alternate two rows so neighbouring names do not collide.
            let stagger = b.categories.len() > 5;
            for (i, c) in b.categories.iter().enumerate() {
                let (px, py) = $chart.backend_coord(&(centers[i], $floor));
                let dy = if stagger && i % 2 == 1 { 26 } else { 8 };
                root.draw(&Text::new(
                    c.clone(),
                    (px, py + dy),
                    label_style.pos(Pos::new(HPos::Center, VPos::Top)),
                ))
                .map_err(err)?;
            }
        }};
    }
    let mut builder = ChartBuilder::on(&chart_area);
    builder
        .margin(10)
        .margin_top(24)
        .x_label_area_size(if b.categories.len() > 5 { 60 } else { 40 })
        .y_label_area_size(80);
    if b.log_y {
        let floor = lo / 2.0;
        let mut chart = builder
            .build_cartesian_2d(0f64..n, (floor..hi * 3.0).log_scale())
            .map_err(err)?;
        body!(chart, floor);
    } else {
        let mut chart = builder
            .build_cartesian_2d(0f64..n, 0f64..hi * 1.15)
            .map_err(err)?;
        body!(chart, 0.0);
    }
    for (j, (name, color, _)) in b.series.iter().enumerate() {
        let y = 40 + j as i32 * 26;
        legend
            .draw(&Rectangle::new([(10, y), (28, y + 16)], color.filled()))
            .map_err(err)?;
        legend
            .draw(&Text::new(
                name.clone(),
                (36, y),
                (FONT, 16).into_font().color(&BLACK),
            ))
            .map_err(err)?;
    }
    Ok(())
}

fn per_broker(
    r: &Results,
    scenarios: &[&str],
    f: impl Fn(&SummaryRow) -> (f64, f64, f64),
) -> Vec<Series> {
    r.brokers
        .iter()
        .map(|b| {
            (
                b.name.clone(),
                broker_color(r, &b.name),
                scenarios
                    .iter()
                    .map(|s| row(r, s, &b.name).map(&f))
                    .collect(),
            )
        })
        .collect()
}

fn seed_chart<DB: DrawingBackend>(
    r: &Results,
    size: f64,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult {
    let mut names = Vec::new();
    let mut categories = Vec::new();
    for (group, label) in [
        ("seed", "classic queue: each message to one of 4 consumers"),
        (
            "seed-stream",
            "stream: each of 4 consumers reads every message",
        ),
    ] {
        if let Some(s) = r.scenarios.iter().find(|s| s.group == group && s.x == size) {
            names.push(s.name.as_str());
            categories.push(label.to_string());
        }
    }
    let bars = Bars {
        title: caption(
            r,
            &format!("{size} B messages, 1 producer, 4 consumers: throughput"),
        ),
        y_desc: "deliveries per second (end to end)".into(),
        markers: vec![None; names.len()],
        categories,
        series: per_broker(r, &names, |x| (x.median, x.min, x.max)),
        log_y: false,
        label: |v| short(v),
    };
    draw_bars(&bars, root)
}

fn targets_chart<DB: DrawingBackend>(r: &Results, root: &DrawingArea<DB, Shift>) -> DrawResult {
    let mut cats = Vec::new();
    let mut values = Vec::new();
    let mut markers = Vec::new();
    for s in r.scenarios.iter().filter(|s| s.target_ratio.is_some()) {
        let (Some(a), Some(b)) = (row(r, &s.name, &r.subject), row(r, &s.name, &r.baseline)) else {
            continue;
        };
        let Some(v) = verdict(s, a, b) else { continue };
        cats.push(s.name.clone());
        values.push(Some((v.ratio, v.ratio, v.ratio)));
        let t = match s.target_absolute {
            // An absolute floor shown as the ratio it would take.
            Some(abs) => abs / b.median.max(1e-9),
            None => s.target_ratio.unwrap_or(1.0),
        };
        markers.push(Some((
            t,
            format!("target {}x", (t * 100.0).round() / 100.0),
        )));
    }
    let bars = Bars {
        title: caption(
            r,
            &format!(
                "{} vs {}: how many times better (higher is better)",
                r.subject, r.baseline
            ),
        ),
        y_desc: format!("{} / {} (latency, memory: inverse)", r.subject, r.baseline),
        categories: cats,
        series: vec![(r.subject.clone(), broker_color(r, &r.subject), values)],
        log_y: true,
        markers,
        label: |v| format!("{v:.1}x"),
    };
    draw_bars(&bars, root)
}

fn latency_chart<DB: DrawingBackend>(r: &Results, root: &DrawingArea<DB, Shift>) -> DrawResult {
    let s = r
        .scenarios
        .iter()
        .find(|s| s.group == "latency")
        .ok_or("no latency scenario")?;
    let cats = vec!["p50".to_string(), "p99".into(), "p99.9".into()];
    let series = r
        .brokers
        .iter()
        .map(|b| {
            let x = row(r, &s.name, &b.name);
            let v = |f: fn(&SummaryRow) -> f64| x.map(|x| (f(x), f(x), f(x)));
            (
                b.name.clone(),
                broker_color(r, &b.name),
                vec![v(|x| x.p50_us), v(|x| x.p99_us), v(|x| x.p999_us)],
            )
        })
        .collect();
    let bars = Bars {
        title: caption(r, &format!("End-to-end latency: {}", s.title)),
        y_desc: "microseconds (log scale, lower is better)".into(),
        categories: cats,
        series,
        log_y: true,
        markers: vec![None, None, None],
        label: |v| crate::stats::micros(v),
    };
    draw_bars(&bars, root)
}

fn cpu_chart<DB: DrawingBackend>(r: &Results, root: &DrawingArea<DB, Shift>) -> DrawResult {
    let names: Vec<&str> = r
        .scenarios
        .iter()
        .filter(|s| s.metric == "msg/s" && s.group != "scaling")
        .map(|s| s.name.as_str())
        .collect();
    let bars = Bars {
        title: caption(r, "Broker CPU time per message (lower is better)"),
        y_desc: "µs of broker CPU per message (log scale)".into(),
        categories: names.iter().map(|s| s.to_string()).collect(),
        series: per_broker(r, &names, |x| {
            let v = x.broker_cpu_us_per_msg;
            (v, v, v)
        }),
        log_y: true,
        markers: vec![None; names.len()],
        label: |v| format!("{v:.1}"),
    };
    draw_bars(&bars, root)
}

fn scaling_chart<DB: DrawingBackend>(r: &Results, root: &DrawingArea<DB, Shift>) -> DrawResult {
    let mut pts: Vec<(&str, f64)> = r
        .scenarios
        .iter()
        .filter(|s| s.group == "scaling")
        .map(|s| (s.name.as_str(), s.x))
        .collect();
    pts.sort_by(|a, b| a.1.total_cmp(&b.1));
    let xmax = pts.last().map_or(1.0, |p| p.1);
    let ymax = r
        .summary
        .iter()
        .filter(|x| pts.iter().any(|p| p.0 == x.scenario))
        .map(|x| x.max)
        .fold(1.0, f64::max);
    let root = root.margin(10, 10, 10, 10);
    let (top, body) = root.split_vertically(40);
    top.draw(&Text::new(
        caption(r, "Scaling: N producers and N consumers, 100 B, manual ack"),
        (0, 8),
        (FONT, 20).into_font().color(&BLACK),
    ))
    .map_err(err)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((0.8f64..xmax * 1.25).log_scale(), 0f64..ymax * 1.15)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("producers = consumers (log scale)")
        .y_desc("messages per second (median, min–max)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| short(*v))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)?;
    for b in &r.brokers {
        let color = broker_color(r, &b.name);
        let line: Vec<(f64, f64, f64, f64)> = pts
            .iter()
            .filter_map(|(s, x)| row(r, s, &b.name).map(|v| (*x, v.median, v.min, v.max)))
            .collect();
        chart
            .draw_series(LineSeries::new(
                line.iter().map(|p| (p.0, p.1)),
                color.stroke_width(3),
            ))
            .map_err(err)?
            .label(b.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], color.filled()));
        chart
            .draw_series(
                line.iter()
                    .map(|p| Circle::new((p.0, p.1), 5, color.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(
                line.iter()
                    .map(|p| PathElement::new(vec![(p.0, p.2), (p.0, p.3)], BLACK.stroke_width(1))),
            )
            .map_err(err)?;
        chart
            .draw_series(line.iter().map(|p| {
                EmptyElement::at((p.0, p.1))
                    + Text::new(short(p.1), (8, -18), (FONT, 13).into_font().color(&BLACK))
            }))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}
