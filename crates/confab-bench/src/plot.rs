//! Latency against offered load, one line per server (p99 thick, p50 thin), as an SVG drawn with
//! plotters' SVG backend (text is emitted as SVG `<text>`: no font files needed).

use std::path::Path;

use plotters::prelude::*;

use crate::summary::Row;

pub struct Series {
    pub server: String,
    /// (offered msg/s, p50 ms, p99 ms), by offered load.
    pub points: Vec<(f64, f64, f64)>,
}

/// The open-loop fanout cases (`rate<N>`) of each server.
pub fn series_from_rows(rows: &[Row]) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for r in rows.iter().filter(|r| r.case.starts_with("rate")) {
        let (Some(x), Some(p50), Some(p99)) = (r.offered_per_s, r.p50_ms, r.p99_ms) else {
            continue;
        };
        match out.iter_mut().find(|s| s.server == r.server) {
            Some(s) => s.points.push((x, p50, p99)),
            None => out.push(Series {
                server: r.server.clone(),
                points: vec![(x, p50, p99)],
            }),
        }
    }
    for s in &mut out {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

pub fn latency_svg(series: &[Series], path: &Path) -> anyhow::Result<()> {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [p.1, p.2]));
    let xmax = xs.fold(1.0f64, f64::max) * 1.15;
    let xmin = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(f64::MAX, f64::min)
        .min(xmax / 2.0)
        / 1.15;
    let (ymin, ymax) = ys.fold((f64::MAX, 0.01f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (ymin, ymax) = ((ymin / 1.5).max(0.01), ymax * 1.5);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Latency vs offered load (200 clients / 20 channels, send → each receipt)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d((xmin..xmax).log_scale(), (ymin..ymax).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered load, messages/s (×10 deliveries each)")
        .y_desc("latency, ms (log)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| {
            if *v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .draw()?;
    let palette = [
        RGBColor(214, 39, 40),
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
    ];
    for (i, s) in series.iter().enumerate() {
        let color = palette[i % palette.len()];
        chart
            .draw_series(LineSeries::new(
                s.points.iter().map(|p| (p.0, p.2)),
                color.stroke_width(3),
            ))?
            .label(format!("{} p99", s.server))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        chart.draw_series(
            s.points
                .iter()
                .map(|p| Circle::new((p.0, p.2), 4, color.filled())),
        )?;
        chart
            .draw_series(LineSeries::new(
                s.points.iter().map(|p| (p.0, p.1)),
                color.stroke_width(1),
            ))?
            .label(format!("{} p50", s.server))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(1))
            });
        chart.draw_series(
            s.points
                .iter()
                .map(|p| TriangleMarker::new((p.0, p.1), 4, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_an_svg() {
        let dir = std::env::temp_dir().join(format!("confab-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.svg");
        let s = vec![Series {
            server: "confab".into(),
            points: vec![(1000.0, 0.5, 1.0), (4000.0, 0.7, 2.5)],
        }];
        latency_svg(&s, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("confab p99"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
