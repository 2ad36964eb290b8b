//! [`FigureData`] → PNG or SVG with plotters, using the embedded DejaVu Sans (no system fonts).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;

use super::{FigureData, Panel, XAxis};
use crate::error::AnalysisError;

/// DejaVu Sans (Debian fonts-dejavu-core; licence in `fonts/LICENSE-DejaVu.txt`).
const FONT: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
/// The family name figures use.
const FAMILY: &str = "sans-serif";
/// Width of one panel.
pub const PANEL_WIDTH_PX: u32 = 520;
/// Height of the plot area (title and panels).
pub const FIGURE_HEIGHT_PX: u32 = 440;
/// Height of one footnote line.
const FOOTNOTE_LINE_PX: u32 = 17;
/// Narrowest figure (room for the footnote).
const FIGURE_WIDTH_MIN_PX: u32 = 880;
/// Most panels side by side.
const PANELS_MAX: usize = 4;

fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "embedded font does not load".to_string())
        })
        .clone()
}

/// Colour key prefix of the iPipe thresholds' sweep series (see [`color_key`]).
const SWEEP_COLOR_PREFIX: &str = "sweep#";
/// Colours of the sweep series, in the figure's order (tab20's light shades: none is a fixed
/// series' colour).
const SWEEP_PALETTE: [RGBColor; 10] = [
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

/// The colour key of `series` among a figure's series `order`: the series itself, except a
/// sweep series (`ipipe/<label>`), which takes its position among the figure's sweep series, so
/// each line of a sweep has its own colour.
pub(super) fn color_key(series: &str, order: &[String]) -> String {
    if !series.starts_with(naam_plan::IPIPE_SWEEP_PREFIX) {
        return series.to_string();
    }
    let index = order
        .iter()
        .filter(|s| s.starts_with(naam_plan::IPIPE_SWEEP_PREFIX))
        .position(|s| s == series)
        .unwrap_or(0);
    format!("{SWEEP_COLOR_PREFIX}{index}")
}

/// Fixed colours per series and location, the same in every figure.
fn color(key: &str) -> RGBColor {
    let sweep = key.strip_prefix(SWEEP_COLOR_PREFIX);
    if let Some(index) = sweep.and_then(|i| i.parse::<usize>().ok()) {
        return SWEEP_PALETTE[index % SWEEP_PALETTE.len()];
    }
    match key {
        "host" => RGBColor(31, 119, 180),
        "nic" => RGBColor(255, 127, 14),
        "client" => RGBColor(44, 160, 44),
        "naam-adaptive" => RGBColor(214, 39, 40),
        "kayak" => RGBColor(148, 103, 189),
        "cell" => RGBColor(140, 86, 75),
        "splinter" => RGBColor(227, 119, 194),
        "ipipe" => RGBColor(127, 127, 127),
        "ipipe-processes" => RGBColor(188, 189, 34),
        "native" => RGBColor(31, 119, 180),
        "interpreter" => RGBColor(255, 127, 14),
        "jit" => RGBColor(44, 160, 44),
        "kernel-jit" => RGBColor(214, 39, 40),
        // The sim-validation figure.
        "local" => RGBColor(64, 64, 64),
        "simulated" => RGBColor(23, 190, 207),
        "p50" => RGBColor(158, 218, 229),
        "p99" => RGBColor(31, 119, 180),
        _ => RGBColor(23, 190, 207),
    }
}

/// Draws `figure` to `path` (`.png` or `.svg`), writing a temp file and renaming it.
pub fn draw_figure(figure: &FigureData, path: &Path) -> Result<(), AnalysisError> {
    let plot_error = |message: String| AnalysisError::Plot {
        path: path.to_path_buf(),
        message,
    };
    register_font().map_err(plot_error)?;
    let size = figure_size_px(figure);
    let temp = temp_path(path);
    let drawn = match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => {
            let root = SVGBackend::new(&temp, size).into_drawing_area();
            draw_root(&root, figure).and_then(|()| root.present().map_err(|e| e.to_string()))
        }
        _ => {
            let root = BitMapBackend::new(&temp, size).into_drawing_area();
            draw_root(&root, figure).and_then(|()| root.present().map_err(|e| e.to_string()))
        }
    };
    if let Err(message) = drawn {
        let _ = std::fs::remove_file(&temp);
        return Err(plot_error(message));
    }
    std::fs::rename(&temp, path).map_err(|source| AnalysisError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The figure's (width, height) in pixels.
fn figure_size_px(figure: &FigureData) -> (u32, u32) {
    let panels = figure.panels.len().clamp(1, PANELS_MAX) as u32;
    (
        (PANEL_WIDTH_PX * panels).max(FIGURE_WIDTH_MIN_PX),
        FIGURE_HEIGHT_PX + FOOTNOTE_LINE_PX * (figure.footnote.len() as u32 + 1),
    )
}

/// Draws `figure` as PNG bytes in memory (the report embeds them), the same pixels
/// [`draw_figure`] writes to a `.png` file.
pub fn draw_png_bytes(figure: &FigureData) -> Result<Vec<u8>, AnalysisError> {
    let plot_error = |message: String| AnalysisError::Plot {
        path: PathBuf::from(format!("{}.png (in memory)", figure.experiment)),
        message,
    };
    register_font().map_err(plot_error)?;
    let (width, height) = figure_size_px(figure);
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        draw_root(&root, figure)
            .and_then(|()| root.present().map_err(|e| e.to_string()))
            .map_err(plot_error)?;
    }
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&rgb))
        .map_err(|e| plot_error(format!("PNG encoding: {e}")))?;
    Ok(png_bytes)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}.{ext}", std::process::id()))
}

fn draw_root<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    figure: &FigureData,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(FIGURE_HEIGHT_PX);
    let titled = top
        .titled(
            &format!("{} — {}", figure.experiment, figure.title),
            (FAMILY, 20),
        )
        .map_err(|e| e.to_string())?;
    let areas = titled.split_evenly((1, figure.panels.len().clamp(1, PANELS_MAX)));
    for (panel, area) in figure.panels.iter().zip(areas.iter()) {
        draw_panel(area, panel)?;
    }
    for (i, line) in figure.footnote.iter().enumerate() {
        let y = 4 + FOOTNOTE_LINE_PX as i32 * i as i32;
        bottom
            .draw(&Text::new(
                line.clone(),
                (10, y),
                (FAMILY, 13).into_font().color(&BLACK),
            ))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Data bounds of a panel: (x range, y range) including error bars.
fn bounds(panel: &Panel) -> (Range<f64>, Range<f64>) {
    let points = panel.lines.iter().flat_map(|l| l.points.iter());
    let xs: Vec<f64> = points
        .clone()
        .map(|p| p.x)
        .chain(panel.markers.iter().map(|m| m.0))
        .collect();
    let ys: Vec<f64> = points
        .flat_map(|p| [Some(p.y), p.err.map(|e| e.0), p.err.map(|e| e.1)])
        .flatten()
        .filter(|v| !panel.y_log || *v > 0.0)
        .collect();
    let (x_min, x_max) = min_max(&xs).unwrap_or((0.0, 1.0));
    let (y_min, y_max) = min_max(&ys).unwrap_or((1.0, 10.0));
    let x = match panel.x_axis {
        XAxis::Categories => -0.5..(panel.categories.len().max(1) as f64 - 0.5),
        XAxis::Log => (x_min.max(1e-9) / 1.5)..(x_max.max(1e-9) * 1.5),
        XAxis::Linear => {
            let pad = ((x_max - x_min) * 0.05).max(x_max.abs() * 0.05).max(1e-9);
            (x_min - pad).min(0.0)..(x_max + pad)
        }
    };
    let y = if panel.y_log {
        (y_min / 1.5)..(y_max * 1.5)
    } else {
        // From 0 (or below, for negative values such as relative errors).
        (y_min.min(0.0) * 1.15)..(y_max * 1.15).max(1e-9)
    };
    (x, y)
}

/// Smallest and largest y of a panel, error bars included.
fn y_data_range(panel: &Panel) -> Option<(f64, f64)> {
    let ys: Vec<f64> = panel
        .lines
        .iter()
        .flat_map(|l| l.points.iter())
        .flat_map(|p| [Some(p.y), p.err.map(|e| e.0), p.err.map(|e| e.1)])
        .flatten()
        .collect();
    min_max(&ys)
}

fn min_max(values: &[f64]) -> Option<(f64, f64)> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (!finite.is_empty()).then_some({
        if min == max {
            (min * 0.9, max * 1.1 + 1e-9)
        } else {
            (min, max)
        }
    })
}

/// A log y axis needs at least this max/min ratio; narrower data reads better linear.
const LOG_Y_RATIO_MIN: f64 = 20.0;

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
) -> Result<(), String> {
    let (_, y_log_range) = bounds(panel);
    let keep_log =
        panel.y_log && y_log_range.end / y_log_range.start >= LOG_Y_RATIO_MIN * 1.5 * 1.5;
    // A log y axis is drawn as a linear axis over log10(y) with labels 10^v: plotters' own
    // log axis labels only a few values per decade.
    let panel = &if keep_log {
        log10_panel(panel)
    } else {
        Panel {
            y_log: false,
            ..panel.clone()
        }
    };
    let (x, mut y) = bounds(panel);
    if keep_log {
        let pad = ((y.end - y.start) * 0.08).max(0.05);
        let (lo, hi) = y_data_range(panel).unwrap_or((0.0, 1.0));
        y = (lo - pad)..(hi + pad);
    }
    let y_label: fn(f64) -> String = if keep_log {
        |v| short_number(round_significant(10f64.powf(v), 2))
    } else {
        short_number
    };
    if panel.x_axis == XAxis::Log {
        draw_chart(area, panel, x.clone().log_scale(), y.clone(), &y, y_label)
    } else {
        draw_chart(area, panel, x.clone(), y.clone(), &y, y_label)
    }
}

/// The panel with every y value (and error bar) replaced by its log10; non-positive values go.
fn log10_panel(panel: &Panel) -> Panel {
    let mut p = panel.clone();
    p.y_log = false;
    for line in &mut p.lines {
        line.points.retain(|pt| pt.y > 0.0);
        for pt in &mut line.points {
            pt.y = pt.y.log10();
            pt.err = pt
                .err
                .filter(|(lo, _)| *lo > 0.0)
                .map(|(lo, hi)| (lo.log10(), hi.log10()));
        }
    }
    p
}

fn round_significant(v: f64, digits: i32) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(digits - 1 - v.log10().floor() as i32);
    (v * scale).round() / scale
}

fn draw_chart<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    x_spec: X,
    y_spec: Y,
    y: &Range<f64>,
    y_label: fn(f64) -> String,
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FAMILY, 15))
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(58)
        .build_cartesian_2d(x_spec, y_spec)
        .map_err(|e| err(&e))?;
    let categories = panel.categories.clone();
    let x_formatter = move |v: &f64| match panel.x_axis {
        XAxis::Categories => categories
            .get(v.round().max(0.0) as usize)
            .filter(|_| (v - v.round()).abs() < 1e-6)
            .cloned()
            .unwrap_or_default(),
        _ => short_number(*v),
    };
    let y_formatter = move |v: &f64| y_label(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .x_label_formatter(&x_formatter)
        .y_label_formatter(&y_formatter)
        .light_line_style(WHITE.mix(0.0));
    if panel.x_axis == XAxis::Categories {
        mesh.x_labels(panel.categories.len() * 2 + 1);
    }
    mesh.draw().map_err(|e| err(&e))?;
    for (x_marker, label) in &panel.markers {
        let style = BLACK.mix(0.5).stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(*x_marker, y.start), (*x_marker, y.end)],
                4,
                4,
                style,
            ))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (*x_marker, y.end),
                (FAMILY, 11).into_font().color(&BLACK.mix(0.7)),
            )))
            .map_err(|e| err(&e))?;
    }
    let bar_base = y.start.max(0.0); // negative values hang below 0
    for (li, line) in panel.lines.iter().enumerate() {
        let c = color(&line.color_key);
        let points: Vec<(f64, f64)> = line.points.iter().map(|p| (p.x, p.y)).collect();
        if panel.bars {
            let width = 0.8 / panel.lines.len().max(1) as f64;
            let bars = line.points.iter().map(|p| {
                let x0 = p.x - 0.4 + li as f64 * width;
                Rectangle::new([(x0, bar_base), (x0 + width * 0.9, p.y)], c.filled())
            });
            chart
                .draw_series(bars)
                .map_err(|e| err(&e))?
                .label(&line.label)
                .legend(move |(lx, ly)| {
                    Rectangle::new([(lx, ly - 5), (lx + 12, ly + 5)], c.filled())
                });
            let centers = line.points.iter().filter_map(|p| {
                p.err
                    .map(|(lo, hi)| (p.x - 0.4 + (li as f64 + 0.45) * width, lo, p.y, hi))
            });
            chart
                .draw_series(centers.map(|(xc, lo, mid, hi)| {
                    ErrorBar::new_vertical(xc, lo, mid, hi, BLACK.stroke_width(1), 5)
                }))
                .map_err(|e| err(&e))?;
            continue;
        }
        let style = c.stroke_width(2);
        let series = if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(points, 6, 4, style))
                .map_err(|e| err(&e))?
        } else {
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(|e| err(&e))?
        };
        let dashed = line.dashed;
        series.label(&line.label).legend(move |(lx, ly)| {
            let end = if dashed { lx + 8 } else { lx + 16 };
            PathElement::new(vec![(lx, ly), (end, ly)], c.stroke_width(2))
        });
        let errors = line.points.iter().filter_map(|p| {
            p.err
                .map(|(lo, hi)| ErrorBar::new_vertical(p.x, lo, p.y, hi, c.stroke_width(1), 6))
        });
        chart.draw_series(errors).map_err(|e| err(&e))?;
        let dots = line.points.iter().filter(|p| panel.point_dots || !p.valid);
        let marks = dots.map(|p| {
            if p.valid {
                Circle::new((p.x, p.y), 3, c.filled())
            } else {
                Circle::new((p.x, p.y), 5, c.stroke_width(2))
            }
        });
        chart.draw_series(marks).map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FAMILY, 11))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(|e| err(&e))
}

/// Axis labels: `1.5k`, `20`, `0.25`.
fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::{color, color_key};

    /// Every line of the iPipe thresholds' sweep has its own colour, none a fixed series' one.
    #[test]
    fn sweep_lines_get_distinct_colours() {
        let order: Vec<String> = ["nic", "ipipe", "ipipe/tail-x0.25", "ipipe/tail-x4"]
            .iter()
            .chain(&["ipipe/mean-x0.25", "ipipe/mean-x4", "ipipe/alpha-x0.25"])
            .chain(&["ipipe/quantum-x0.25", "ipipe/quantum-x4"])
            .map(|s| s.to_string())
            .collect();
        let colours: Vec<_> = order.iter().map(|s| color(&color_key(s, &order))).collect();
        for (i, a) in colours.iter().enumerate() {
            for (j, b) in colours.iter().enumerate().skip(i + 1) {
                assert_ne!(a, b, "{} and {} share a colour", order[i], order[j]);
            }
        }
        assert_eq!(color_key("ipipe", &order), "ipipe");
    }
}
